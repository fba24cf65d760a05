"""The night's commands never load the harness: the drill, the testbed, the drill's SMTP server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HARNESS = ("prep_iac.testbed", "prep_iac.drill.night", "prep_iac.drill.mailbox",
           "prep_iac.testbed.difusor", "aiosmtpd")  # fmt: skip


@pytest.mark.parametrize(
    "argv", [["run", "--help"], ["push", "--help"], ["status", "--help"], ["elections", "list"]]
)
def test_a_command_that_does_not_drill_imports_no_harness(argv: list[str]) -> None:
    probe = (
        "import json, sys\n"
        "from prep_iac.cli.main import cli\n"
        f"try:\n    cli.main({argv!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert [m for m in loaded if m.startswith(HARNESS)] == []
