"""Render the deploy's Jinja2 templates (``prep_iac/deploy/templates``) to upload."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"

_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # noqa: S701 (config files, not HTML; the notice page escapes itself)
)


def render(template: str, **data: Any) -> str:
    """The text of ``template`` with ``data``; a missing variable is an error."""
    return _ENV.get_template(template).render(**data)


def rendered(template: str, **data: Any) -> io.BytesIO:
    """``render`` as a file-like object for ``files.put``."""
    return io.BytesIO(render(template, **data).encode())
