"""Fuzz the host's readers of untrusted uploads with atheris, for a bounded time each.

Targets, each the host program's own code (``prep_iac/hostside/activate.py``):

- ``patch``: ``manifest-patch.json.gz`` as uploaded, read by ``read_patch`` and
  turned into a full manifest by ``apply_patch`` (against a real base manifest
  when the patch names one), which is what the host does before it verifies
  the signature over the result;
- ``bundle``: ``bundle.tar`` (plain or gzip), read member by member by
  ``extract_bundle`` into a scratch release against a small manifest.

Half the inputs are gzipped by the harness first, so the fuzzer reaches the
JSON and tar layers and not only gzip's header checks. The seeds are a real
upload of a small cut. The only exception allowed out of a reader is the
program's own ``Rejected``; anything else is a finding (libFuzzer stops and
writes the input to ``--findings``). Coverage-guided: the host program and
the stdlib's ``gzip``, ``tarfile`` and ``json`` decoders are instrumented.

Needs atheris (``pip install -e '.[fuzz]'``; not part of CI).
Run: ``.venv/bin/python benchmarks/fuzz_readers.py [--seconds 120] [--json out.json]``
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TARGETS = ("patch", "bundle")
SITE = {
    "index.html": b"<meta name=prep-corte content=20180701_2000>",
    "assets/app.js": b"app()",
    "data/r.json": b'{"votos":1}',
}


def seeds(corpus: Path) -> tuple[bytes, dict[str, dict[str, Any]]]:
    """Write a real upload's patch and bundle as seeds; return the base manifest's
    canonical bytes and the small manifest's entries by path."""
    from prep_iac.publish.prepare import bundle
    from prep_iac.wire import PATCH_FORMAT, canonical_json

    work = Path(tempfile.mkdtemp(prefix="prep-iac-fuzz-seed-"))
    for rel, data in SITE.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_bytes(data)
    entries: list[dict[str, Any]] = [
        {"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for rel, data in sorted(SITE.items())
    ]
    header = {"format": "prep-iac-manifest/1", "election": "coahuila-2018",
              "cut_id": "20180701_2000", "cut_time": "2018-07-01T20:00:00-05:00"}  # fmt: skip
    base = canonical_json({**header, "files": entries})
    full = {"format": PATCH_FORMAT, "base": None, "header": header, "files": entries,
            "removed": []}  # fmt: skip
    delta = {**full, "base": hashlib.sha256(base).hexdigest(), "files": entries[:1],
             "removed": [entries[2]["path"]]}  # fmt: skip
    for target in TARGETS:
        (corpus / target).mkdir(parents=True, exist_ok=True)
    (corpus / "patch" / "full").write_bytes(gzip.compress(canonical_json(full)))
    (corpus / "patch" / "delta").write_bytes(gzip.compress(canonical_json(delta)))
    _, tar_bytes = bundle(work, tuple(SITE))
    (corpus / "bundle" / "tar").write_bytes(tar_bytes)
    (corpus / "bundle" / "tar.gz").write_bytes(gzip.compress(tar_bytes))
    shutil.rmtree(work)
    return base, {str(e["path"]): e for e in entries}


def worker(target: str, libfuzzer_args: list[str]) -> None:
    """One target under atheris (never returns: libFuzzer exits)."""
    import atheris

    with atheris.instrument_imports(include=["prep_iac", "gzip", "tarfile", "json"]):
        from prep_iac.hostside import activate
        from prep_iac.wire import BUNDLE_NAME, PATCH_NAME, Rejected, apply_patch

    scratch = Path(tempfile.mkdtemp(prefix="prep-iac-fuzz-", dir="/dev/shm"))
    staged = scratch / "20180701_2000"
    staged.mkdir()
    owner = os.getuid()
    base, expected = seeds(Path(tempfile.mkdtemp(prefix="prep-iac-fuzz-corpus-")))

    def one_input(data: bytes) -> None:
        if not data:
            return
        payload = gzip.compress(data[1:], 1, mtime=0) if data[0] & 1 else data[1:]
        try:
            if target == "patch":
                (staged / PATCH_NAME).write_bytes(payload)
                patch = activate.read_patch(staged, owner)
                named = patch.get("base")
                if named is None or named == hashlib.sha256(base).hexdigest():
                    apply_patch(None if named is None else json.loads(base), patch)
            else:
                (staged / BUNDLE_NAME).write_bytes(payload)
                building = scratch / "building"
                shutil.rmtree(building, ignore_errors=True)
                building.mkdir()
                activate.extract_bundle(staged / BUNDLE_NAME, building, expected, owner)
        except Rejected:
            pass  # the program's own refusal: what an attacker's input should get

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


def run(target: str, seconds: int, findings: Path) -> dict[str, Any]:
    """Fuzz ``target`` for ``seconds`` in a child process; its executions and findings."""
    corpus = Path(tempfile.mkdtemp(prefix=f"prep-iac-fuzz-{target}-"))
    seeds(corpus)
    findings.mkdir(parents=True, exist_ok=True)
    child = subprocess.run(
        [sys.executable, __file__, "--worker", target, str(corpus / target),
         f"-max_total_time={seconds}", f"-artifact_prefix={findings}/{target}-",
         "-max_len=65536", "-rss_limit_mb=2048"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    shutil.rmtree(corpus, ignore_errors=True)
    done = re.search(r"Done (\d+) runs in (\d+) second", child.stderr)
    crashes = sorted(p.name for p in findings.glob(f"{target}-*"))
    exceptions = re.findall(r"=== Uncaught Python exception: ===\n(.+)", child.stderr)
    return {
        "target": target,
        "executions": int(done.group(1)) if done else None,
        "seconds": int(done.group(2)) if done else None,
        "findings": crashes,
        "exceptions": exceptions,
        "tail": "" if done else child.stderr[-2000:],
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120, help="per target")
    parser.add_argument("--findings", type=Path, default=Path("/var/tmp/prep-iac-fuzz-findings"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results = [run(target, args.seconds, args.findings) for target in TARGETS]
    for result in results:
        print(
            f"{result['target']}: {result['executions']} executions in {result['seconds']} s,"
            f" {len(result['findings'])} finding(s)"
        )
        for exception in result["exceptions"]:
            print(f"  uncaught: {exception}")
        if result["tail"]:
            print(result["tail"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
