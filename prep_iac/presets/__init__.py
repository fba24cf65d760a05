"""Elections taken from the calls, shipped as package data."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from prep_iac.models.election import Election
from prep_iac.models.loading import ConfigError, Problem, load_model, read_yaml, validate_data

_ELECTIONS = files(__package__).joinpath("elections")


def election_presets() -> list[str]:
    """Names of the shipped election presets."""
    return sorted(
        p.name.removesuffix(".yaml") for p in _ELECTIONS.iterdir() if p.name.endswith(".yaml")
    )


def load_election(name_or_path: str | Path) -> Election:
    """Load a preset by name (``coahuila-2018``) or a custom election from a YAML file."""
    text = str(name_or_path)
    if text in election_presets():
        resource = _ELECTIONS.joinpath(f"{text}.yaml")
        data, lines = read_yaml(Path(str(resource)))
        return validate_data(Election, data, f"preset {text}", lines)
    path = Path(text)
    if not path.exists():
        raise ConfigError(
            [
                Problem(
                    text,
                    "",
                    "no such preset or file",
                    f"one of {', '.join(election_presets())} or a YAML file",
                )
            ]
        )
    return load_model(Election, path)
