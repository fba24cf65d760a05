"""Candidate config files are checked at their final paths before any replaces its file.

The check script (``check-candidates.sh.j2``) runs here as on a host: in a private
mount namespace, each directory with candidates covered by a copy holding them.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from prep_iac.deploy.operations.files import _Directory
from prep_iac.deploy.rendering import render


def check(tree: Path, validate: str) -> subprocess.CompletedProcess[str]:
    """Render the script for candidates in ``tree`` and two of its subdirectories; run it."""
    files = {
        tree: ["main.conf"],
        tree / "action.d": ["one.conf"],
        tree / "filter.d": ["two.conf", "three.conf"],
    }
    directories = [
        _Directory(shlex.quote(str(d)),
                   [(shlex.quote(n), shlex.quote(str(d / f"{n}.prep-new"))) for n in names])
        for d, names in sorted(files.items(), key=lambda item: str(item[0]).count("/"))
    ]  # fmt: skip
    script = render("check-candidates.sh.j2", directories=directories, validate=validate)
    return subprocess.run(
        ["sh", "-c", 'scratch=$(mktemp -d) && unshare --mount --propagation private sh -c "$0"'
         ' sh "$scratch"; checked=$?; rm -rf "$scratch"; exit $checked', script],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_every_candidate_is_seen_at_its_final_path_and_nothing_on_disk_changes(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "etc-prog"
    for sub in ("action.d", "filter.d"):
        (tree / sub).mkdir(parents=True)
    # A fresh host: no file exists yet at its final path, only the candidates.
    for rel in ("main.conf", "action.d/one.conf", "filter.d/two.conf", "filter.d/three.conf"):
        (tree / f"{rel}.prep-new").write_text(f"new {rel}\n")
    finals = ["main.conf", "action.d/one.conf", "filter.d/two.conf", "filter.d/three.conf"]
    validate = " && ".join(
        f"grep -qx {shlex.quote(f'new {rel}')} {shlex.quote(str(tree / rel))}" for rel in finals
    )
    done = check(tree, validate)
    assert done.returncode == 0, done.stderr
    assert not any((tree / rel).exists() for rel in finals)  # the check changed nothing


def test_a_failing_check_fails_the_set(tmp_path: Path) -> None:
    tree = tmp_path / "etc-prog"
    for sub in ("action.d", "filter.d"):
        (tree / sub).mkdir(parents=True)
    for rel in ("main.conf", "action.d/one.conf", "filter.d/two.conf", "filter.d/three.conf"):
        (tree / f"{rel}.prep-new").write_text("broken\n")
    assert check(tree, f"grep -qx ok {shlex.quote(str(tree / 'main.conf'))}").returncode != 0
