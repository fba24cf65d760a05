"""Load YAML config files into models, with one clear error per problem.

Every problem names the file, the line, the field, the value found and what was
expected, so that an operator can fix a registry at 17:55 on election day
without reading a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

M = TypeVar("M", bound=BaseModel)

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one config file."""

    source: str
    field: str
    value: str
    expected: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        field = self.field or "(document)"
        return f"{where}: {field}: got {self.value}; expected {self.expected}"


class ConfigError(ValueError):
    """A config file could not be loaded; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in configuration:\n{lines}")


def field_path(loc: Loc) -> str:
    """Render a pydantic location as ``difusores[2].nodes[0].host``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _line_index(node: yaml.Node, loc: Loc = ()) -> dict[Loc, int]:
    """Map each location in a composed YAML document to its 1-based line."""
    index: dict[Loc, int] = {loc: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, child in node.value:
            index.update(_line_index(child, (*loc, str(key.value))))
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            index.update(_line_index(child, (*loc, i)))
    return index


def _line_for(index: Mapping[Loc, int], loc: Loc) -> int | None:
    # pydantic may point below what the YAML spelled out (a missing key); use
    # the deepest ancestor that exists in the document.
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in index:
            return index[loc[:cut]]
    return None


def problems_from_validation(
    error: ValidationError, source: str, lines: Mapping[Loc, int] | None = None
) -> list[Problem]:
    """Turn a pydantic ``ValidationError`` into file-aware problems."""
    return [_problem(detail, source, lines or {}) for detail in error.errors()]


def _problem(detail: ErrorDetails, source: str, lines: Mapping[Loc, int]) -> Problem:
    loc: Loc = tuple(detail["loc"])
    value = "nothing (missing)" if detail["type"] == "missing" else _short(detail.get("input"))
    expected = detail["msg"]
    for prefix in ("Value error, ", "Input should be "):
        expected = expected.removeprefix(prefix)
    return Problem(source, field_path(loc), value, expected, _line_for(lines, loc))


def read_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file; return its data and a location-to-line index."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [Problem(source, "", exc.strerror or str(exc), "a readable file")]
        ) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            [Problem(source, "", f"invalid YAML ({problem})", "valid YAML", line)]
        ) from exc
    return data, (_line_index(node) if node is not None else {})


def load_model(model: type[M], path: Path) -> M:
    """Load ``path`` (YAML) as ``model``; raise ``ConfigError`` listing every problem."""
    data, lines = read_yaml(path)
    return validate_data(model, data, str(path), lines)


def validate_data(
    model: type[M], data: Any, source: str, lines: Mapping[Loc, int] | None = None
) -> M:
    """Validate already-parsed data as ``model``, naming ``source`` in errors."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            [Problem(source, "", _short(data), f"a mapping of {model.__name__} fields")]
        )
    try:
        return model.model_validate(data, context={"source": source})
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(exc, source, lines)) from exc


def located_errors(
    problems: Iterable[tuple[Loc, Any, str]], kind: str = "invalid_field"
) -> list[InitErrorDetails]:
    """Error details for ``(loc, value, expected)`` triples, for ``fail_fields``."""
    return [
        InitErrorDetails(
            type=PydanticCustomError(kind, "{expected}", {"expected": expected}),
            loc=loc,
            input=value,
        )
        for loc, value, expected in problems
    ]


def fail_fields(
    model: str, problems: Iterable[tuple[Loc, Any, str]], also: ValidationError | None = None
) -> None:
    """Raise one located error per ``(loc, value, expected)`` from a model validator.

    A plain ``ValueError`` from a model validator points at the whole document;
    this lets cross-field checks (a window's end before its start, a duplicate
    id) name the exact field, so the loader can give its line. Errors already
    found in ``also`` are kept, so one run reports every problem.
    """
    details = located_errors(problems)
    if also is not None:
        kept = [
            located_errors([(e["loc"], e.get("input"), e["msg"])], kind=e["type"])[0]
            for e in also.errors()
        ]
        details = kept + details
    if details:
        raise ValidationError.from_exception_data(model, details)
