"""``prep-iac synth`` as an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PREP_IAC = [sys.executable, "-m", "prep_iac.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PREP_IAC, "synth", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_synth_prints_a_summary_table(tmp_path: Path) -> None:
    result = run("--cuts", "2", "--out", str(tmp_path), "--seed", "1", "--every", "6")
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "20180701_1800" in out and "20180701_1900" in out
    assert "2 cuts" in out and "on disk" in out
    assert (tmp_path / "20180701_1900" / "20180701_1900_PREP_AYUN_COAH.zip").is_file()


def test_synth_json_lists_each_cut(tmp_path: Path) -> None:
    election = Path(__file__).parents[2] / "prep_iac/presets/elections/coahuila-2017.yaml"
    result = run("--election", str(election), "--cuts", "2", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    cuts = json.loads(result.stdout)
    assert [c["id"] for c in cuts] == ["20170604_1800", "20170604_1815"]
    assert cuts[0]["changed_files"] == cuts[0]["files"] > 10_000
    assert 30e6 <= cuts[1]["bytes"] <= 35e6
    assert cuts[1]["linked_files"] > cuts[1]["changed_files"]
