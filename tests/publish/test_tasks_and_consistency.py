"""Local tests: the page-load consistency check catches what a non-atomic switch serves;
the Fabric/Invoke ``sign`` task and ``prep-iac sign`` sign a cut the way hosts verify it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from prep_iac.cli.publish import keys, sign
from prep_iac.cuts import generate_night
from prep_iac.presets import load_election
from prep_iac.publish import consistency, tasks
from prep_iac.publish.signing import allowed_signers_line, generate_signing_key, verify_file

ELECTION = load_election("coahuila-2018")


@pytest.fixture(scope="module")
def two_cuts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("cuts")
    return [info.path for info in generate_night(ELECTION, out, cuts=2, seed=3)]


def _manifest(cut: Path) -> dict[str, str]:
    return {
        p.relative_to(cut).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in cut.rglob("*")
        if p.is_file()
    }


def _changed_json(old: Path, new: Path) -> str:
    a, b = _manifest(old), _manifest(new)
    return next(p for p in b if p.startswith("assets/JSON/") and a.get(p) != b[p])


def _load(cut: Path, paths: list[str], served_as: str | None = None) -> list[consistency.Response]:
    """A page load served from ``cut``'s files, each labelled with ``served_as``'s id."""
    name = served_as or cut.name
    out = []
    for path in paths:
        body = (cut / path).read_bytes()
        out.append(consistency.Response("/" + path, 200, name, len(body), body))
    return out


def test_a_page_load_from_one_cut_is_consistent(two_cuts: list[Path]) -> None:
    old, new = two_cuts
    manifests = {c.name: _manifest(c) for c in two_cuts}
    paths = ["corte.json", "index.html", _changed_json(old, new)]
    assert consistency.problems(_load(new, paths), manifests) == []


def test_a_non_atomic_copy_serving_a_new_json_under_the_old_cut_is_caught(
    two_cuts: list[Path],
) -> None:
    """What copying a new cut over the live directory in place would serve mid-copy:
    the old corte.json and page next to an already-new results file."""
    old, new = two_cuts
    manifests = {c.name: _manifest(c) for c in two_cuts}
    changed = _changed_json(old, new)
    load = _load(old, ["corte.json", "index.html"]) + _load(new, [changed], served_as=old.name)
    found = consistency.problems(load, manifests)
    assert any("content is not that cut's file" in p for p in found)
    assert any("corte_actualizacion" in p for p in found)


def test_a_partly_written_file_is_caught(two_cuts: list[Path]) -> None:
    _old, new = two_cuts
    manifests = {c.name: _manifest(c) for c in two_cuts}
    load = _load(new, ["corte.json", "index.html"])
    whole = load[1].body
    load[1] = consistency.Response(
        "/index.html", 200, new.name, len(whole), whole[: len(whole) // 2]
    )
    found = consistency.problems(load, manifests)
    assert any("bytes" in p for p in found)
    assert any("not that cut's file" in p for p in found)


def test_a_page_load_straddling_a_switch_is_reported_as_mixed(two_cuts: list[Path]) -> None:
    old, new = two_cuts
    manifests = {c.name: _manifest(c) for c in two_cuts}
    load = _load(old, ["corte.json"]) + _load(new, ["index.html"])
    assert consistency.problems(load, manifests) == [
        f"mixed: responses from cuts {sorted([old.name, new.name])}"
    ]


def _signers(tmp_path: Path, key: Path) -> Path:
    signers = tmp_path / "allowed_signers"
    signers.write_text(allowed_signers_line(key.with_name(key.name + ".pub")))
    return signers


def test_the_fabric_sign_task_signs_a_cut_hosts_can_verify(
    two_cuts: list[Path], tmp_path: Path
) -> None:
    key = generate_signing_key(tmp_path / "signing")
    out = tmp_path / "out"
    tasks_dir = Path(tasks.__file__).parent
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("fab")), "--search-root", str(tasks_dir),
            "-c", "tasks", "sign", "--cut", str(two_cuts[0]), "--election", ELECTION.id,
            "--signing-key", str(key), "--out", str(out),
        ],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reported = json.loads(result.stdout)
    assert reported["cut_id"] == two_cuts[0].name
    verify_file(_signers(tmp_path, key), Path(reported["manifest"]) / "manifest.json")


def test_prep_iac_sign_and_signing_key_generate(two_cuts: list[Path], tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "k" / "signing"
    generated = runner.invoke(keys, ["signing", "generate", str(key)])
    assert generated.exit_code == 0, generated.output
    namespaces = "prep-iac-cut,prep-iac-freshness,prep-iac-instruction"
    assert f'iec namespaces="{namespaces}" ssh-ed25519 ' in generated.output
    again = runner.invoke(keys, ["signing", "generate", str(key)])
    assert again.exit_code != 0
    signed = runner.invoke(
        sign,
        ["--cut", str(two_cuts[1]), "--election", ELECTION.id,
         "--signing-key", str(key), "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert signed.exit_code == 0, signed.output
    manifest = tmp_path / "out" / "manifests" / two_cuts[1].name / "manifest.json"
    verify_file(_signers(tmp_path, key), manifest)
