"""The prep-iac command as an operator uses it: presets and config checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

FIXTURES = Path(__file__).parent.parent / "fixtures"
PREP_IAC = [sys.executable, "-m", "prep_iac.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PREP_IAC, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_elections_show_prints_the_preset() -> None:
    result = run("elections", "show", "coahuila-2018")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "coahuila-2018" in out
    assert "10 min" in out
    assert "2018-07-01T18:00:00-05:00" in out
    assert "20180701_1800_PREP_AYUN_COAH.zip" in out


def test_elections_show_json_is_the_model() -> None:
    result = run("elections", "show", "coahuila-2017", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["update_period_minutes"] == 15
    assert data["publication_end"] == "2017-06-07T23:59:00"


def test_config_check_accepts_a_good_registry() -> None:
    result = run("config", "check", str(FIXTURES / "registry-ok.yaml"))
    assert result.returncode == 0, result.stderr
    assert "2 difusores" in result.stdout


def test_config_check_lists_every_problem_of_every_file_without_traceback(tmp_path: Path) -> None:
    data = yaml.safe_load((FIXTURES / "registry-ok.yaml").read_text())
    data["difusores"][1]["id"] = "uadec"
    data["difusores"][0]["nodes"][0]["port"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    broken = tmp_path / "broken.yaml"
    broken.write_text("election: [\n")

    result = run("config", "check", str(bad), str(broken))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    err = " ".join(result.stderr.split())
    assert "3 problem(s)" in err
    assert f"{bad}:" in err and "difusores[0].nodes[0].port: got 0" in err
    assert "difusores[1].id: got 'uadec'; expected a unique id (difusores[0] has it)" in err
    assert f"{broken}:" in err and "invalid YAML" in err


def test_unknown_election_is_a_clear_error() -> None:
    result = run("elections", "show", "nowhere-2030")
    assert result.returncode == 2
    assert "no such preset or file" in result.stderr
    assert "coahuila-2018" in result.stderr
