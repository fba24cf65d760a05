"""SIGKILL the host's activator at random points of 20 activations; check ``live`` after each.

The real program (``prep_iac/hostside/activate.py``, run as the host runs it:
system Python, isolated) activates a synthetic night cut after cut in a
publication tree on this machine, each upload made as the push makes it (the
delta against the live manifest). Each activation is killed with SIGKILL at a
uniform random instant within the duration of an uninterrupted activation of
the same kind (measured first, on a scratch tree); then ``live`` must be a
complete release matching its manifest byte for byte (every file's size and
SHA-256, no file more) or the notice before the first cut. The activator is
then run again without a kill, and the cut must be live and complete.

Run: ``.venv/bin/python benchmarks/kill_activation.py [--activations 20] [--json out.json]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from prep_iac.cuts import generate_night
from prep_iac.hostside import activate_script
from prep_iac.presets import load_election
from prep_iac.publish.prepare import PreparedCut, prepare_cut
from prep_iac.publish.signing import allowed_signers_line, generate_signing_key
from prep_iac.wire import BUNDLE_NAME, MANIFEST_NAME, PART_SUFFIX, PATCH_NAME, SIGNATURE_SUFFIX

ELECTION = load_election("coahuila-2018")


class Tree:
    """A publication tree on this machine and the activator run over it."""

    def __init__(self, root: Path, signers: Path) -> None:
        self.root, self.signers = root, signers
        for name in ("incoming", "notice", "releases", "status"):
            (root / name).mkdir(parents=True, exist_ok=True)
        (root / "notice" / "index.html").write_text("<h1>Publicación suspendida</h1>")
        (root / "live").symlink_to("notice")

    def upload(self, cut: PreparedCut) -> None:
        """What the push sends for the live manifest, renamed complete."""
        live = self.root / "status" / "manifest.json"
        payload = cut.upload_for(live.read_bytes() if live.is_file() else None)
        part = self.root / "incoming" / f"{cut.manifest.cut_id}{PART_SUFFIX}"
        part.mkdir()
        (part / BUNDLE_NAME).write_bytes(payload.bundle)
        (part / PATCH_NAME).write_bytes(payload.patch)
        (part / f"{MANIFEST_NAME}{SIGNATURE_SUFFIX}").write_bytes(cut.signature)
        part.rename(self.root / "incoming" / cut.manifest.cut_id)

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                "/usr/bin/python3", "-I", "-S", str(activate_script()), "process",
                "--root", str(self.root), "--election", ELECTION.id, "--difusor", "bench",
                "--allowed-signers", str(self.signers), "--log", str(self.root / "activate.log"),
                "--config", "/nonexistent",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def live_problem(self) -> str | None:
        """None when ``live`` is the notice or a complete release matching its manifest."""
        target = (self.root / "live").readlink()
        if str(target) == "notice":
            return None
        release = self.root / target
        manifest_path = release.parent / f"{release.name}.manifest.json"
        if not release.is_dir() or not manifest_path.is_file():
            return f"live -> {target}: no release with a manifest"
        expected = {f["path"]: f for f in json.loads(manifest_path.read_bytes())["files"]}
        found = {
            str((Path(d) / n).relative_to(release))
            for d, _, names in os.walk(release)
            for n in names
        }
        if found != set(expected):
            return f"live -> {target}: {len(found ^ set(expected))} files missing or extra"
        for rel, entry in expected.items():
            data = (release / rel).read_bytes()
            if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
                return f"live -> {target}: {rel} differs from its manifest"
        return None

    def live_cut(self) -> str:
        return (self.root / "live").readlink().name


def timed(tree: Tree) -> float:
    start = time.monotonic()
    tree.start().wait()
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="prep-iac-kill-activation-") as tmp:
        work = Path(tmp)
        infos = generate_night(ELECTION, work / "cuts", cuts=args.activations, seed=args.seed)
        key = generate_signing_key(work / "signing")
        signers = work / "allowed_signers"
        signers.write_text(allowed_signers_line(key.with_suffix(".pub")))
        cuts = [prepare_cut(i.path, ELECTION, key, work / "prepared") for i in infos]

        # How long an uninterrupted first (full) and second (delta) activation take.
        scratch = Tree(work / "scratch", signers)
        durations = []
        for cut in cuts[:2]:
            scratch.upload(cut)
            durations.append(timed(scratch))

        tree = Tree(work / "srv-prep", signers)
        killed = consistent = 0
        problems: list[str] = []
        for index, cut in enumerate(cuts):
            tree.upload(cut)
            process = tree.start()
            time.sleep(rng.uniform(0, durations[min(index, 1)]))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait()
            after_kill = tree.live_problem()
            tree.start().wait()
            after_rerun = tree.live_problem()
            if tree.live_cut() != cut.manifest.cut_id:
                after_rerun = after_rerun or f"live is {tree.live_cut()}, not {cut.manifest.cut_id}"
            if after_kill is None and after_rerun is None:
                consistent += 1
            else:
                problems.append(f"{cut.manifest.cut_id}: {after_kill or after_rerun}")

    print(
        f"activations: {args.activations}, killed mid-run: {killed}, live complete and"
        f" matching its manifest after every kill and re-run: {consistent}/{args.activations}"
    )
    print(f"uninterrupted activation: full {durations[0]:.2f} s, delta {durations[1]:.2f} s")
    for problem in problems:
        print(f"  PROBLEM {problem}")
    if args.json:
        figures = {
            "activations": args.activations,
            "killed": killed,
            "consistent": consistent,
            "full_seconds": round(durations[0], 2),
            "delta_seconds": round(durations[1], 2),
            "problems": problems,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
