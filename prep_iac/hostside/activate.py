#!/usr/bin/python3
"""Activate uploaded PREP cuts on a difusor host: verify, assemble, switch atomically.

This file runs on the difusor host, installed by the difusor deploy beside
the wire formats (``prep_iac/wire.py``, which the IEC side imports too); it
needs nothing beyond the host's Python 3 standard library and OpenSSH's
``ssh-keygen -Y verify``.

Layout under the publication root (default ``/srv/prep``)::

    incoming/<cut-id>.part/   the IEC's upload in progress (SFTP account writes here)
    incoming/<cut-id>/        a complete upload: bundle.tar(.gz), manifest-patch.json.gz,
                              manifest.json.sig
    incoming/fresh-*.json     a signed freshness statement (+ .sig), every period
    incoming/suspend-*.json   a signed suspension instruction (+ .sig)
    releases/<cut-id>/        assembled, verified, root-owned releases
    releases/<cut-id>.manifest.json
    live -> releases/<cut-id> or notice     what nginx serves; switched by rename(2)
    notice/                   the Spanish notice shown when publication is suspended
    status/status.json        what the IEC reads back to confirm a push
    status/manifest.json      the live cut's manifest, from which the IEC computes deltas

An upload is three files. ``bundle.tar`` is one tar stream (gzip-compressed
when that pays) of the files the host does not have. ``manifest-patch.json.gz``
says how to rebuild the full manifest: from nothing (``base`` null: every entry
is in the patch) or from the manifest of the host's last verified release,
named by the SHA-256 of its canonical bytes, plus changed and removed entries.
``manifest.json.sig`` is the IEC's signature over the full canonical manifest,
so the host verifies the bytes it rebuilt, never bytes the uploader chose.

A cut becomes visible only after its manifest signature and every uploaded
file's size and SHA-256 check out. The bundle is read member by member (no
``extractall``): only regular files the manifest lists, at safe paths, each at
most once, are written straight into the release being built while hashed.
Files the upload does not carry must be unchanged since the previous verified
release; they are hard-linked from it and not hashed again. That is sound
because ``releases/`` is root-owned and the SFTP account (chrooted, writing
only under ``incoming/``) can neither write those inodes nor link to them: they
are the bytes that were verified when that release was activated.

Nothing in ``incoming/`` is trusted before it is checked: every uploaded file
is opened without following a link and without blocking (a FIFO or a device
cannot stall the activator), then, on the open descriptor, must be a regular
file of the SFTP account (the owner of ``incoming/``) with a single name and no
larger than what the manifest's sizes allow; anything else is ``bad-upload``.

The switch of ``live`` is a single rename, so visitors see either the old cut
or the new one, never a mix. It is durable: every file written and every
directory of the new release are fsynced before it, and the root directory
after it, so a power cut leaves the old release live or the new one complete.
A release directory that ``live`` points at is never removed: the same cut
pushed again reuses it when it still matches its manifest byte for byte.
Anything wrong, including a write failing (``disk-full``, ``write-failed``),
leaves the previous cut live and records the reason in ``status.json`` and the log.

**Freshness.** The live cut stays published while the IEC vouches for it: a
new cut is vouched for ``max_age_seconds`` from its activation by its own
signed manifest, and each freshness statement (every period, to every node)
vouches for its validity (``expires_at - issued_at``) counted on this host's
clock from when it arrived, so a skew between the IEC's clock and this one
never darkens a portal. The watchdog shows the notice once the newest vouch
has run out (the IEC cannot reach the host, or stopped vouching for it); the
next statement or cut brings the results back. A statement naming a newer cut
than the live one is recorded as ``behind`` in ``status.json`` and keeps the
live cut published until it runs out. A *final* statement (the PREP closed or
the publication window ended) has no expiry: the last cut stays published
from then on, until the difusor's own administrators take it down. A signed
suspension shows the notice whatever statements say; only a cut pushed again
(a reinstatement) lifts it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

if not __package__:  # run as a program: the wire module is installed beside it (the deploy)
    # or is the package's own (a checkout); either way under the nearest prep_iac/ folder.
    _here = Path(__file__).resolve().parents
    sys.path.insert(0, str(next(d for d in _here if (d / "prep_iac" / "wire.py").is_file())))

from prep_iac.wire import (
    BUNDLE_NAME,
    CUT_ID,
    CUT_NAMESPACE,
    FRESHNESS_NAMESPACE,
    INSTRUCTION_NAMESPACE,
    INSTRUCTION_PREFIX,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MAX_SIGNED_DOCUMENT,
    PATCH_FORMAT,
    PATCH_NAME,
    SIGNATURE_SUFFIX,
    SIGNER_IDENTITY,
    STATEMENT_PREFIX,
    UTC,
    Rejected,
    State,
    apply_patch,
    canonical_json,
    instant,
    iso,
    parse_statement,
    parse_suspension,
    safe_relpath,
)

CHUNK = 1 << 20
# How far this host's clock may run ahead of the IEC's before a statement's own
# expiry cuts its vouch short (chrony keeps real servers within milliseconds).
CLOCK_TOLERANCE = timedelta(minutes=10)
# What an upload may unpack to beyond its files' bytes: tar headers, padding and
# long-name records per member; the patch is bounded the same way.
TAR_OVERHEAD_PER_MEMBER = 4096
MAX_PATCH_BYTES = 64 << 20
GZIP_MAGIC = b"\x1f\x8b"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Config:
    root: Path
    election: str
    difusor: str | None  # statements and instructions must name it
    allowed_signers: Path
    keep_releases: int
    max_age_seconds: int
    log: Path | None

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def live(self) -> Path:
        return self.root / "live"

    @property
    def notice(self) -> Path:
        return self.root / "notice"

    @property
    def status_dir(self) -> Path:
        return self.root / "status"

    @property
    def uploader(self) -> int:
        """The SFTP account's uid: the owner of ``incoming/`` (the deploy mounts it so)."""
        return os.lstat(self.incoming).st_uid


def verify_signature(
    config: Config, document: bytes, signature: Path, namespace: str = CUT_NAMESPACE
) -> None:
    """Check the IEC's signing key signed ``document`` in ``namespace`` (its SSH key
    alone is not enough; a signature made for another kind of document never passes).

    Both the document and the signature are passed as bytes already read (the
    signature through a private copy): the uploader cannot swap either file
    between the check and its use.
    """
    try:
        signed = read_small(signature, config.uploader)
    except FileNotFoundError:
        raise Rejected("unsigned", f"{signature.name} is missing") from None
    with tempfile.NamedTemporaryFile(prefix="prep-sig.") as copy:
        copy.write(signed)
        copy.flush()
        result = subprocess.run(
            [
                "ssh-keygen", "-Y", "verify",
                "-f", str(config.allowed_signers),
                "-I", SIGNER_IDENTITY,
                "-n", namespace,
                "-s", copy.name,
            ],
            input=document,
            capture_output=True,
            check=False,
        )  # fmt: skip
    if result.returncode != 0:
        message = (result.stderr or result.stdout).decode(errors="replace").strip().splitlines()
        raise Rejected("bad-signature", message[-1] if message else "ssh-keygen refused it")


def open_upload(path: Path, owner: int, limit: int) -> BinaryIO:
    """An uploaded file opened for reading only if it is what an upload may be.

    Opened with ``O_NOFOLLOW`` (a symlink is refused, never followed) and
    ``O_NONBLOCK`` (opening a FIFO or a device returns at once), then checked on
    the open descriptor, so it cannot be swapped afterwards: a regular file,
    owned by the SFTP account (``owner``), with one name only (a hard link could
    be a name of a file the account must not choose), of at most ``limit`` bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        why = f"{path.name}: cannot be opened as a file ({exc.strerror})"
        raise Rejected("bad-upload", why) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Rejected("bad-upload", f"{path.name} is not a regular file")
        if info.st_nlink != 1:
            raise Rejected("bad-upload", f"{path.name} has {info.st_nlink} names (a hard link)")
        if info.st_uid != owner:
            says = f"{path.name} belongs to uid {info.st_uid}, not the uploader's {owner}"
            raise Rejected("bad-upload", says)
        if info.st_size > limit:
            raise Rejected("oversize", f"{path.name} has {info.st_size} bytes (at most {limit})")
        os.set_blocking(fd, True)  # a regular file's reads never block; O_NONBLOCK was for open
        # Checked before it becomes a file object: a directory cannot even be one.
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_small(path: Path, owner: int, limit: int = MAX_SIGNED_DOCUMENT) -> bytes:
    """A small uploaded file's bytes (a signature, a statement, an instruction)."""
    with open_upload(path, owner, limit) as handle:
        return handle.read(limit + 1)[:limit]


def check_upload_dir(staged: Path, owner: int) -> None:
    """An upload is a real directory of the SFTP account, not a link to one elsewhere."""
    info = os.lstat(staged)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != owner:
        raise Rejected("bad-upload", f"{staged.name} is not a directory of the uploader")


class Bounded:
    """A reader that refuses to yield more than ``limit`` bytes (a decompression bomb)."""

    def __init__(self, source: Any, limit: int, what: str) -> None:
        self.source, self.left, self.what = source, limit, what

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.source.read(self.left + 1 if size < 0 else min(size, self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            raise Rejected("oversize", f"{self.what} unpacks to more than the manifest allows")
        return data


def read_patch(staged: Path, owner: int) -> dict[str, Any]:
    """The upload's manifest patch, parsed (not yet trusted)."""
    try:
        with (
            open_upload(staged / PATCH_NAME, owner, MAX_PATCH_BYTES) as raw,
            gzip.GzipFile(fileobj=raw, mode="rb") as packed,
        ):
            patch = json.loads(Bounded(packed, MAX_PATCH_BYTES, PATCH_NAME).read())
    except FileNotFoundError:
        raise Rejected("no-manifest", f"{staged.name}/{PATCH_NAME} is missing") from None
    except Rejected:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise Rejected("bad-manifest", f"{PATCH_NAME} is not gzipped JSON: {exc}") from None
    if not isinstance(patch, dict) or patch.get("format") != PATCH_FORMAT:
        raise Rejected("bad-manifest", f"{PATCH_NAME} is not a {PATCH_FORMAT} document")
    return patch


def read_manifest(config: Config, staged: Path, base: bytes | None) -> dict[str, Any]:
    """Rebuild a staged upload's full manifest from ``base`` and its patch, and verify it.

    ``base`` is the canonical manifest of the last verified release, or None.
    """
    check_upload_dir(staged, config.uploader)
    patch = read_patch(staged, config.uploader)
    base_sha = patch.get("base")
    if base_sha is None:
        manifest = apply_patch(None, patch)
    elif base is None or hashlib.sha256(base).hexdigest() != base_sha:
        raise Rejected(
            "bad-patch-base",
            f"patch is against manifest {str(base_sha)[:12]}, not this host's last release",
        )
    else:
        manifest = apply_patch(json.loads(base), patch)
    verify_signature(config, canonical_json(manifest), staged / (MANIFEST_NAME + SIGNATURE_SUFFIX))
    problems = []
    if manifest.get("format") != MANIFEST_FORMAT:
        problems.append(f"format {manifest.get('format')!r} is not {MANIFEST_FORMAT!r}")
    if manifest.get("election") != config.election:
        problems.append(f"election {manifest.get('election')!r} is not {config.election!r}")
    if manifest.get("cut_id") != staged.name:
        problems.append(f"cut_id {manifest.get('cut_id')!r} does not match upload {staged.name!r}")
    if not isinstance(manifest.get("files"), list) or not manifest["files"]:
        problems.append("files is empty")
    if problems:
        raise Rejected("bad-manifest", "; ".join(problems))
    return dict(manifest)


def read_status(config: Config) -> dict[str, Any]:
    try:
        return dict(json.loads((config.status_dir / "status.json").read_text()))
    except (OSError, ValueError):
        return {}


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``path`` so that readers see the old or the new content, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise


def point_live(config: Config, target: Path) -> None:
    """Switch ``live`` to ``target`` with one rename of a fresh symlink."""
    tmp = config.root / f".live.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(target, config.root))
    tmp.replace(config.live)
    fsync_dir(config.root)


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (new names, renames) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def live_release(config: Config) -> Path | None:
    """The release ``live`` points at, or None when it shows the notice or nothing."""
    try:
        target = (config.root / config.live.readlink()).resolve()
    except OSError:
        return None
    return target if target.parent == config.releases.resolve() else None


def last_release(config: Config) -> Path | None:
    """The last activated release, even while ``live`` shows the notice."""
    cut_id = str(read_status(config).get("cut_id", ""))
    release = config.releases / cut_id
    if CUT_ID.match(cut_id) and release.is_dir():
        return release
    return live_release(config)


@dataclass(frozen=True)
class Previous:
    """The last verified release (hard-link source) and its canonical manifest bytes."""

    release: Path | None
    manifest: bytes | None

    def hashes(self) -> dict[str, str]:
        """Path to SHA-256 of the release, from the manifest it was verified with."""
        if self.release is None or self.manifest is None:
            return {}
        try:
            return {str(f["path"]): str(f["sha256"]) for f in json.loads(self.manifest)["files"]}
        except (ValueError, KeyError, TypeError):
            return {}  # unreadable: every file must be uploaded again


def previous_release(config: Config) -> Previous:
    current = last_release(config)
    if current is None:
        return Previous(None, None)
    try:
        return Previous(current, (config.releases / f"{current.name}.manifest.json").read_bytes())
    except OSError:
        return Previous(current, None)


def extract_bundle(
    bundle: Path, building: Path, expected: dict[str, dict[str, Any]], owner: int
) -> set[str]:
    """Write the bundle's members into ``building``, hashing as they are written.

    Returns the paths written. Only regular files listed in ``expected``, at safe
    paths, once each, with the listed size and SHA-256 are accepted.
    """
    written: set[str] = set()
    made: set[Path] = set()
    limit = sum(int(e["size"]) for e in expected.values())
    limit += TAR_OVERHEAD_PER_MEMBER * (len(expected) + 1) + tarfile.RECORDSIZE
    try:
        with contextlib.ExitStack() as stack:
            archive = open_bundle(stack, bundle, limit, owner)
            for member in archive:
                if not member.isreg():
                    raise Rejected("bad-member", f"{member.name!r} is not a regular file")
                rel = str(safe_relpath(member.name))
                entry = expected.get(rel)
                if entry is None or rel in written:
                    raise Rejected("extra-member", f"{rel} is not a file of the manifest")
                if member.size != entry["size"]:
                    says = f"{rel}: {member.size} bytes, manifest says {entry['size']}"
                    raise Rejected("size-mismatch", says)
                data = archive.extractfile(member)
                assert data is not None  # a regular file member has data
                dest = building / rel
                make_dirs(dest.parent, building, made)
                digest = hashlib.sha256()
                with dest.open("xb") as out:
                    while chunk := data.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                    os.fchmod(out.fileno(), 0o644)
                    out.flush()
                    os.fsync(out.fileno())
                if digest.hexdigest() != entry["sha256"]:
                    raise Rejected("hash-mismatch", f"{rel}: SHA-256 differs from the manifest")
                written.add(rel)
    except FileNotFoundError:
        raise Rejected("bad-bundle", f"{BUNDLE_NAME} is missing") from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise Rejected("bad-bundle", f"{BUNDLE_NAME} is not a complete archive: {exc}") from None
    return written


def open_bundle(
    stack: contextlib.ExitStack[Any], bundle: Path, limit: int, owner: int
) -> tarfile.TarFile:
    """The bundle as a tar stream (plain or gzip), refusing to unpack past ``limit`` bytes.

    The file itself may not be larger either (plus gzip's worst-case growth of
    incompressible data): trailing garbage or a second stream is never read.
    """
    raw_limit = limit + limit // 256 + 1024
    source: Any = stack.enter_context(open_upload(bundle, owner, raw_limit))
    compressed = source.read(2) == GZIP_MAGIC
    source.seek(0)
    if compressed:
        source = stack.enter_context(gzip.GzipFile(fileobj=source, mode="rb"))
    stream: Any = Bounded(source, limit, BUNDLE_NAME)
    return stack.enter_context(tarfile.open(fileobj=stream, mode="r|"))


def make_dirs(directory: Path, top: Path, made: set[Path]) -> None:
    """``mkdir -p`` below ``top``, world-readable whatever the umask."""
    if directory == top or directory in made:
        return
    make_dirs(directory.parent, top, made)
    with contextlib.suppress(FileExistsError):
        directory.mkdir()
        directory.chmod(0o755)
    made.add(directory)


def assemble(config: Config, staged: Path, manifest: dict[str, Any], previous: Previous) -> Path:
    """Build ``releases/<cut>`` from the bundle plus unchanged files of the previous release.

    A release of this cut that is already there and still matches the manifest
    (the same cut pushed again, e.g. to reinstate a suspended difusor) is reused.
    Everything written is fsynced before the release gets its final name.
    """
    cut_id = str(manifest["cut_id"])
    unchanged = previous.hashes()
    expected = {str(safe_relpath(str(e["path"]))): e for e in manifest["files"]}
    final = config.releases / cut_id
    if final.is_dir() and not final.is_symlink() and release_matches(final, expected):
        return final
    config.releases.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=config.releases, prefix=f".{cut_id}."))
    try:
        written = extract_bundle(staged / BUNDLE_NAME, building, expected, config.uploader)
        made: set[Path] = set()
        for rel, entry in expected.items():
            if rel in written:
                continue
            if previous.release is None or unchanged.get(rel) != entry["sha256"]:
                raise Rejected("missing-file", f"{rel} changed or is new but was not uploaded")
            make_dirs((building / rel).parent, building, made)
            try:
                os.link(previous.release / rel, building / rel)
            except OSError as exc:
                raise Rejected(
                    "missing-file", f"{rel}: not in the previous release ({exc.strerror})"
                ) from None
        building.chmod(0o755)
        for directory, _, _ in os.walk(building):
            fsync_dir(Path(directory))
        if final.exists() or final.is_symlink():
            replace_release(config, final, building)
        else:
            building.rename(final)
        fsync_dir(config.releases)
        return final
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


def release_matches(release: Path, expected: dict[str, dict[str, Any]]) -> bool:
    """Whether ``release`` holds exactly the manifest's files, byte for byte."""
    found = {
        str((Path(directory) / name).relative_to(release))
        for directory, _, names in os.walk(release)
        for name in names
    }
    if found != set(expected):
        return False
    for rel, entry in expected.items():
        path = release / rel
        if path.is_symlink() or not path.is_file() or path.stat().st_size != entry["size"]:
            return False
        if sha256_file(path) != entry["sha256"]:
            return False
    return True


def replace_release(config: Config, final: Path, building: Path) -> None:
    """Put the complete ``building`` in place of a damaged release of the same cut.

    When ``live`` points at the old one, it is first pointed at ``building``, so
    visitors never lose a complete release while the old one is moved away.
    """
    if live_release(config) != final.resolve():
        shutil.rmtree(final)
        building.rename(final)
        return
    point_live(config, building)
    retired = config.releases / f".{final.name}.retired.{os.getpid()}"
    shutil.rmtree(retired, ignore_errors=True)
    final.rename(retired)
    building.rename(final)
    point_live(config, final)
    shutil.rmtree(retired, ignore_errors=True)


def log(config: Config, record: dict[str, Any]) -> None:
    line = json.dumps({"at": now_iso(), **record}, sort_keys=True, ensure_ascii=False)
    print(line, file=sys.stderr, flush=True)  # journald keeps it
    if config.log is not None:
        config.log.parent.mkdir(parents=True, exist_ok=True)
        with config.log.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def record(config: Config, status: dict[str, Any], result: dict[str, Any]) -> None:
    # The IEC waits for a sequence number past the one it saw before its
    # upload, so an older verdict on the same cut id is never taken for this one's.
    status["sequence"] = int(status.get("sequence", 0)) + 1
    status["last_result"] = {"at": now_iso(), "sequence": status["sequence"], **result}
    write_atomic(config.status_dir / "status.json", canonical_json(status))
    log(config, result)


def activate(config: Config, staged: Path) -> dict[str, Any]:
    """Verify one complete upload and make it live; return the result recorded."""
    status = read_status(config)
    cut_id = staged.name
    try:
        previous = previous_release(config)
        manifest = read_manifest(config, staged, previous.manifest)
        live_cut = status.get("cut_id")
        if live_cut == cut_id and status.get("state") == State.LIVE and live_release(config):
            result = {"outcome": "already-active", "cut_id": cut_id}
            record(config, status, result)
            return result
        # The same cut again, while the notice shows (suspended or stale), is the
        # IEC re-publishing it, e.g. to reinstate a difusor when no newer cut exists.
        newer = instant(manifest["cut_time"]) > instant(status.get("cut_time"))
        if live_cut and not newer and live_cut != cut_id:
            raise Rejected("replay", f"cut {cut_id} is not newer than live cut {live_cut}")
        release = assemble(config, staged, manifest, previous)
        manifest_bytes = canonical_json(manifest)
        write_atomic(config.releases / f"{cut_id}.manifest.json", manifest_bytes)
        point_live(config, release)
        write_atomic(config.status_dir / "manifest.json", manifest_bytes)
        status.update(
            state=State.LIVE,
            cut_id=cut_id,
            cut_time=manifest["cut_time"],
            activated_at=now_iso(),
            files=len(manifest["files"]),
            # The IEC skips downloading status/manifest.json when it knows these bytes.
            manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        )
        if instant((status.get("behind") or {}).get("cut_time")) <= instant(manifest["cut_time"]):
            status.pop("behind", None)
        result = {"outcome": "activated", "cut_id": cut_id}
        record(config, status, result)
        prune(config)
        return result
    except (Rejected, OSError) as exc:
        if isinstance(exc, OSError):
            exc = write_failure(exc)
        result = {
            "outcome": "rejected",
            "cut_id": cut_id,
            "reason": exc.reason,
            "detail": exc.detail,
        }
        record(config, status, result)
        return result
    finally:
        if staged.is_symlink():
            staged.unlink()
        shutil.rmtree(staged, ignore_errors=True)


def write_failure(exc: OSError) -> Rejected:
    """An error of the host's own filesystem while activating, as a recorded rejection."""
    reason = "disk-full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "write-failed"
    where = f" ({exc.filename})" if exc.filename else ""
    return Rejected(reason, f"{exc.strerror or exc}{where}")


def signed_document(config: Config, path: Path, namespace: str) -> bytes:
    """The bytes of an uploaded instruction or statement whose ``.sig`` the IEC made in
    ``namespace``; a host deployed without its difusor id accepts none."""
    document = read_small(path, config.uploader)
    verify_signature(config, document, path.with_name(path.name + SIGNATURE_SUFFIX), namespace)
    if config.difusor is None:
        raise Rejected("no-difusor-id", "this host was deployed without its difusor id")
    return document


def consume(path: Path) -> None:
    """Remove an instruction or statement and its signature once it has been handled."""
    for done in (path, path.with_name(path.name + SIGNATURE_SUFFIX)):
        if done.is_dir() and not done.is_symlink():  # an upload that is not a file at all
            shutil.rmtree(done, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                done.unlink()


def refused(config: Config, status: dict[str, Any], path: Path, exc: Rejected) -> dict[str, Any]:
    result = {"outcome": "rejected", "document": path.name, "reason": exc.reason}
    result["detail"] = exc.detail
    record(config, status, result)
    return result


def suspend(config: Config, instruction: Path) -> dict[str, Any]:
    """Apply a signed suspension from the IEC: show the notice instead of results."""
    status = read_status(config)
    try:
        document = signed_document(config, instruction, INSTRUCTION_NAMESPACE)
        assert config.difusor is not None  # signed_document refuses a host without one
        order = parse_suspension(document, config.election, config.difusor)
        if order.issued_at <= instant(status.get("instruction_at")):
            raise Rejected("replay", "instruction is not newer than the last one applied")
        point_live(config, config.notice)
        status.update(
            state=State.SUSPENDED, instruction_at=iso(order.issued_at), reason=order.reason
        )
        result = {"outcome": "suspended", "document": instruction.name, "reason": order.reason}
        record(config, status, result)
        return result
    except Rejected as exc:
        return refused(config, status, instruction, exc)
    finally:
        consume(instruction)


def freshen(config: Config, path: Path, now: datetime | None = None) -> dict[str, Any]:
    """Apply a signed freshness statement: the IEC still vouches for this difusor's cut.

    Refused (and logged): unsigned or signed for another namespace, for another
    election or difusor, malformed, or not newer than the newest one held (a
    replay, or a statement that arrived after a newer one). Accepted, it is the
    newest vouch; a host showing the notice because its vouch ran out goes back
    to its last release. A suspension is never lifted by a statement.
    """
    status = read_status(config)
    try:
        document = signed_document(config, path, FRESHNESS_NAMESPACE)
        assert config.difusor is not None  # signed_document refuses a host without one
        statement = parse_statement(document, config.election, config.difusor)
        held = status.get("freshness") or {}
        if statement.issued_at <= instant(held.get("issued_at")):
            raise Rejected(
                "replay", f"statement of {iso(statement.issued_at)} is not newer than the one held"
            )
        received = now or datetime.now(UTC)
        if statement.expires_at is not None and received > statement.expires_at + CLOCK_TOLERANCE:
            # Held back and delivered late (someone with the SFTP key raced the host
            # for it): it must not vouch anew for a cut the IEC stopped vouching for.
            raise Rejected("expired", f"statement expired at {iso(statement.expires_at)}")
        status["freshness"] = {**statement.to_json(), "received_at": iso(received)}
        live_time = instant(status.get("cut_time"))
        if statement.cut_time > live_time:
            status["behind"] = {
                "cut_id": statement.cut_id, "cut_time": statement.cut_time.isoformat(),
                "since": iso(received),
            }  # fmt: skip
        else:
            status.pop("behind", None)
        outcome = "fresh"
        release = last_release(config)
        if status.get("state") == State.STALE and release is not None:
            point_live(config, release)
            status["state"] = State.LIVE
            outcome = "fresh-again"
        result = {
            "outcome": outcome, "document": path.name, "cut_id": statement.cut_id,
            "issued_at": iso(statement.issued_at), "final": statement.final,
        }  # fmt: skip
        record(config, status, result)
        return result
    except Rejected as exc:
        return refused(config, status, path, exc)
    finally:
        consume(path)


def vouched_until(config: Config, status: dict[str, Any]) -> datetime | None:
    """Until when the live cut stays published on this host's clock; None: for good.

    The later of: its activation plus ``max_age_seconds`` (its own signed
    manifest vouches for a new cut that long), and the newest statement's
    validity counted from when it arrived here, but never past its own
    ``expires_at`` by more than ``CLOCK_TOLERANCE`` (a statement delivered late
    vouches only for what is left of it). A final statement never runs out.
    """
    ends = []
    if "activated_at" in status:
        activated = instant(status["activated_at"])
        ends.append(activated + timedelta(seconds=config.max_age_seconds))
    fresh = status.get("freshness")
    if isinstance(fresh, dict):
        if fresh.get("final") is True:
            return None
        expires = instant(fresh.get("expires_at"))
        validity = expires - instant(fresh.get("issued_at"))
        ends.append(min(instant(fresh.get("received_at")) + validity, expires + CLOCK_TOLERANCE))
    return max(ends) if ends else datetime.min.replace(tzinfo=UTC)


def watchdog(config: Config, now: datetime | None = None) -> dict[str, Any] | None:
    """Show the notice once nothing vouches for the live cut any more (``vouched_until``).

    Counted on the host's own clock from when each vouch arrived, never from the
    cut's stated time, so a correct host is never darkened by a skew between
    the PREP's or the IEC's clock and its own.
    """
    status = read_status(config)
    if status.get("state") != State.LIVE or "activated_at" not in status:
        return None
    until = vouched_until(config, status)
    moment = now or datetime.now(UTC)
    if until is None or moment <= until:
        return None
    point_live(config, config.notice)
    status["state"] = State.STALE
    result = {
        "outcome": "stale", "cut_id": status.get("cut_id"), "vouched_until": iso(until),
        "late_seconds": int((moment - until).total_seconds()),
    }  # fmt: skip
    record(config, status, result)
    return result


def prune(config: Config) -> None:
    """Keep the newest ``keep_releases`` releases, by the cut time their verified
    manifests state (ids do not sort in time order across a fall-back hour:
    ``0100b`` follows ``0150``); never the live one."""
    keep = {p.name for p in [live_release(config)] if p is not None}
    releases = sorted(
        (p for p in config.releases.iterdir() if p.is_dir() and CUT_ID.match(p.name)),
        key=lambda p: (release_time(config, p), p.name),
    )
    keep.update(p.name for p in releases[-config.keep_releases :])
    for path in releases:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (config.releases / f"{path.name}.manifest.json").unlink()
    # Leftovers of an assembly interrupted by a crash or power loss (but a
    # release being swapped in when it happened may be live).
    for path in config.releases.glob(".*"):
        if path.is_dir() and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def release_time(config: Config, release: Path) -> datetime:
    """The cut time in a release's verified manifest (unreadable: before every other)."""
    try:
        data = json.loads((config.releases / f"{release.name}.manifest.json").read_bytes())
        return instant(data.get("cut_time"))
    except (OSError, ValueError, AttributeError):
        return instant(None)


def staged_cut_time(staged: Path, owner: int) -> datetime:
    """The cut time an upload claims (unverified: used only to order uploads)."""
    try:
        return instant(read_patch(staged, owner)["header"].get("cut_time"))
    except (Rejected, OSError, KeyError, AttributeError):
        return instant(None)


def signed_uploads(entries: list[Path], prefix: str) -> list[Path]:
    """Statements or instructions waiting in ``incoming/``, oldest first (by name)."""
    return sorted(p for p in entries if p.name.startswith(prefix) and p.name.endswith(".json"))


def process(config: Config) -> list[dict[str, Any]]:
    """Apply complete uploads in cut-time order, then statements, then instructions.

    Partial uploads (``.part``, hidden names) are left alone. Normally one
    upload is waiting. When several are (the service was down), each is
    verified in turn, so a bad newest upload cannot hide a good one. Statements
    follow the cuts they may name, and a suspension comes last, so it wins.
    """
    if not config.incoming.is_dir():
        return []
    entries = list(config.incoming.iterdir())
    owner = config.uploader
    uploads = sorted(
        (p for p in entries if CUT_ID.match(p.name) and (p.is_dir() or p.is_symlink())),
        key=lambda p: staged_cut_time(p, owner),
    )
    results = [activate(config, p) for p in uploads]
    results += [freshen(config, p) for p in signed_uploads(entries, STATEMENT_PREFIX)]
    results += [suspend(config, p) for p in signed_uploads(entries, INSTRUCTION_PREFIX)]
    forget_orphans(entries)
    return results


def forget_orphans(entries: list[Path], now: datetime | None = None) -> None:
    """Remove signatures whose document never came (an upload cut after its first file),
    once they are an hour old on this host's clock; a fresh one may be in flight."""
    names = {p.name for p in entries}
    limit = (now or datetime.now(UTC)) - timedelta(hours=1)
    for path in entries:
        document = path.name.removesuffix(SIGNATURE_SUFFIX)
        if document == path.name or document in names:
            continue
        with contextlib.suppress(OSError):
            if datetime.fromtimestamp(path.lstat().st_mtime, UTC) < limit:
                path.unlink()


@contextlib.contextmanager
def locked(config: Config) -> Iterator[None]:
    """One activation at a time: the path unit, the watchdog timer and an operator may overlap."""
    config.status_dir.mkdir(parents=True, exist_ok=True)
    with (config.status_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def load_config(args: argparse.Namespace) -> Config:
    data: dict[str, Any] = {}
    if args.config and Path(args.config).is_file():
        data = json.loads(Path(args.config).read_text())
    root = Path(args.root or data.get("root", "/srv/prep"))
    election = args.election or data.get("election")
    if not election:
        raise SystemExit(
            f"prep-activate: no election set (--election or 'election' in {args.config})"
        )
    log_path = data.get("log", "/var/log/prep-iac/activate.log")
    return Config(
        root=root,
        election=election,
        difusor=args.difusor or data.get("difusor"),
        allowed_signers=Path(
            args.allowed_signers or data.get("allowed_signers", "/etc/prep-iac/allowed_signers")
        ),
        keep_releases=int(data.get("keep_releases", 5)),
        max_age_seconds=int(data.get("max_age_seconds", 2400)),  # (3 + 1) × 10 min
        log=Path(args.log) if args.log else (Path(log_path) if log_path else None),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prep-activate", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["process", "watchdog", "status"])
    parser.add_argument("--config", default="/etc/prep-iac/activate.json")
    parser.add_argument("--root")
    parser.add_argument("--election")
    parser.add_argument("--difusor", help="this host's difusor id, as in the IEC's registry")
    parser.add_argument("--allowed-signers")
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    config = load_config(args)
    with locked(config):
        if args.command == "process":
            results = process(config)
        elif args.command == "watchdog":
            outcome = watchdog(config)
            results = [outcome] if outcome else []
        else:
            results = [read_status(config)]
    for result in results:
        print(json.dumps(result, sort_keys=True, ensure_ascii=False))
    return 1 if any(r.get("outcome") == "rejected" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
