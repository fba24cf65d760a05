"""Promises the repository makes to its users: the README's commands and the layout."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> dict[str, str]:
    """The commands in README.md's quick-start block, by the comment above each."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- quickstart -->\s*```sh\n(.*?)```", text, re.S)
    assert block, "README.md lost its quick-start block"
    commands: dict[str, str] = {}
    comment = ""
    for line in block.group(1).splitlines():
        if line.startswith("#"):
            comment = line.lstrip("# ").strip()
        elif line.strip():
            commands[comment] = line.strip()
    return commands


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = readme_commands()
    assert len(commands) == 2, commands
    test_command = next(c for k, c in commands.items() if k.startswith("Tests:"))
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_main_job_runs_the_cli_after_setup() -> None:
    main = next(c for k, c in readme_commands().items() if k.startswith("Main job:"))
    assert main.startswith("bash .ci/setup && .venv/bin/prep-iac ")


def test_top_level_layout_is_the_documented_one() -> None:
    tracked = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")} - {"__pycache__"}
    expected = {
        "pyproject.toml",
        "deploys",
        "inventories",
        "prep_iac",
        "group_data",
        "tests",
        "README.md",
        "benchmarks",
    }
    assert expected <= tracked
    assert tracked - expected <= {"var", "build", "dist", "prep_iac.egg-info"}
