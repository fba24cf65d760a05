"""Render the testbed's config files from the Jinja2 templates in ``templates/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

_ENV = Environment(
    loader=PackageLoader("prep_iac.testbed", "templates"),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # noqa: S701 (config files, not HTML)
)


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)


def write(path: Path, template: str, mode: int = 0o644, **context: Any) -> None:
    """Render ``template`` into ``path`` with ``mode``, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(template, **context))
    path.chmod(mode)
