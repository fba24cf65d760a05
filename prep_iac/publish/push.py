"""Push a signed cut to difusor nodes over SFTP and wait for the host to confirm it.

One push to one node:

1. connect with the IEC's SSH key, accepting only the node's pinned host key;
2. read the host's live manifest (``status/manifest.json``) and send only the
   files whose hash differs (everything when the host has nothing readable);
3. upload into ``incoming/<cut>.part/``, then rename it to ``incoming/<cut>/``:
   the host's activation sees complete uploads only;
4. poll ``status/status.json`` until the host reports the cut active, or
   rejected, or the election's transfer budget runs out.

Failures are retried with backoff inside the budget. Every outcome comes back
as a ``NodeResult`` with bytes sent, duration and an error class, which the
orchestrator records; nothing here raises for a difusor's fault.
"""

from __future__ import annotations

import base64
import contextlib
import json
import posixpath
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection

from prep_iac.hostside.activate import MANIFEST_NAME, PART_SUFFIX, SIGNATURE_SUFFIX
from prep_iac.models.difusor import Difusor, HostKey, Node
from prep_iac.publish.prepare import PreparedCut

POLL_SECONDS = 0.25
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0)


@dataclass
class NodeResult:
    """What happened when pushing one cut to one node."""

    difusor: str
    node: str
    cut_id: str
    outcome: str = "failed"  # "confirmed" or "failed"
    bytes_sent: int = 0
    files_sent: int = 0
    attempts: int = 0
    duration_s: float = 0.0
    error_class: str = ""
    error: str = ""
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def ok(self) -> bool:
        return self.outcome == "confirmed"


@dataclass
class DifusorResult:
    """A push to every node of one difusor; successful only if every node confirmed."""

    difusor: str
    cut_id: str
    nodes: list[NodeResult]

    @property
    def ok(self) -> bool:
        return bool(self.nodes) and all(n.ok for n in self.nodes)


class PushFailure(Exception):
    """One attempt failed; ``error_class`` is a stable short code for records."""

    def __init__(self, error_class: str, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.retry = retry


@dataclass(frozen=True)
class Credentials:
    """How the IEC logs in: its SSH private key (not the signing key)."""

    key_filename: Path
    connect_timeout: float = 10.0
    compress: bool = True


def host_key_entry(node: Node) -> str:
    return node.host if node.port == 22 else f"[{node.host}]:{node.port}"


def pinned_pkey(key: HostKey) -> paramiko.PKey:
    return paramiko.PKey.from_type_string(key.type, base64.b64decode(key.key))


@contextlib.contextmanager
def connect(node: Node, user: str, credentials: Credentials) -> Iterator[Connection]:
    """A Fabric connection that accepts only the node's pinned host key."""
    conn = Connection(
        node.host,
        user=user,
        port=node.port,
        config=Config(overrides={"load_ssh_configs": False}),
        connect_timeout=credentials.connect_timeout,
        connect_kwargs={
            "key_filename": str(credentials.key_filename),
            "look_for_keys": False,
            "allow_agent": False,
            "compress": credentials.compress,
            "banner_timeout": credentials.connect_timeout,
            "auth_timeout": credentials.connect_timeout,
        },
    )
    # Fabric's default policy adds unknown keys; a difusor must be who the registry says.
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    conn.client.get_host_keys().add(
        host_key_entry(node), node.host_key.type, pinned_pkey(node.host_key)
    )
    try:
        conn.open()
    except Exception as exc:
        conn.close()
        raise _connect_failure(exc, node, user) from exc
    try:
        yield conn
    finally:
        conn.close()


def _connect_failure(exc: Exception, node: Node, user: str) -> Exception:
    """Name why a connection failed; unknown errors pass through unchanged."""
    where = f"{node.host}:{node.port}"
    if isinstance(exc, paramiko.BadHostKeyException):
        offered = exc.key.get_name()
        return PushFailure(
            "host-key-changed",
            f"{where} presented a {offered} key, not the pinned one",
            retry=False,
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return PushFailure("auth", f"{user}@{where}: {exc}")
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return PushFailure(
            "host-key-unknown",
            f"{where} offered no key of the pinned type {node.host_key.type}",
            retry=False,
        )
    if isinstance(exc, paramiko.SSHException):
        return PushFailure("ssh", f"{where}: {exc}")
    if isinstance(exc, TimeoutError):
        return PushFailure("timeout", f"{where}: timed out connecting")
    if isinstance(exc, OSError):
        return PushFailure("unreachable", f"{where}: {exc.strerror or exc}")
    return exc


def read_json(sftp: paramiko.SFTPClient, path: str) -> dict[str, Any] | None:
    """A small JSON file from the host, or None when absent or unreadable."""
    try:
        with sftp.open(path, "rb") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def files_to_send(cut: PreparedCut, remote: dict[str, Any] | None) -> list[str]:
    """Paths whose content the host does not already have live."""
    have: dict[str, str] = {}
    if remote is not None and remote.get("election") == cut.manifest.election:
        with contextlib.suppress(KeyError, TypeError):
            have = {str(f["path"]): str(f["sha256"]) for f in remote["files"]}
    return [f.path for f in cut.manifest.files if have.get(f.path) != f.sha256]


def remove_tree(sftp: paramiko.SFTPClient, path: str) -> None:
    """Delete a remote directory tree (leftovers of an interrupted upload)."""
    for entry in sftp.listdir_attr(path):
        child = posixpath.join(path, entry.filename)
        if entry.st_mode is not None and stat.S_ISDIR(entry.st_mode):
            remove_tree(sftp, child)
        else:
            sftp.remove(child)
    sftp.rmdir(path)


def clean_incoming(sftp: paramiko.SFTPClient, incoming: str) -> None:
    for entry in sftp.listdir_attr(incoming):
        if entry.filename.endswith(PART_SUFFIX):
            remove_tree(sftp, posixpath.join(incoming, entry.filename))


def upload(sftp: paramiko.SFTPClient, cut: PreparedCut, paths: Iterable[str], staging: str) -> int:
    """Upload ``paths`` of the cut plus its signed manifest under ``staging``; return bytes."""
    paths = list(paths)
    sftp.mkdir(staging)
    made = {staging}
    for directory in sorted({posixpath.dirname(p) for p in paths} - {""}):
        parts = directory.split("/")
        for depth in range(1, len(parts) + 1):
            remote_dir = posixpath.join(staging, *parts[:depth])
            if remote_dir not in made:
                sftp.mkdir(remote_dir)
                made.add(remote_dir)
    sent = 0
    for rel in paths:
        local = cut.directory / rel
        with local.open("rb") as handle:
            # putfo pipelines writes (paramiko #1660); the host verifies every byte anyway.
            sftp.putfo(handle, posixpath.join(staging, rel), confirm=False)
        sent += local.stat().st_size
    for name, data in (
        (MANIFEST_NAME, cut.manifest_bytes),
        (MANIFEST_NAME + SIGNATURE_SUFFIX, cut.signature),
    ):
        with sftp.open(posixpath.join(staging, name), "wb") as handle:
            handle.write(data)
        sent += len(data)
    return sent


def wait_for_activation(
    sftp: paramiko.SFTPClient, status_path: str, cut_id: str, deadline: float
) -> None:
    """Poll the host's status until it reports ``cut_id`` active or rejected."""
    while time.monotonic() < deadline:
        status = read_json(sftp, status_path)
        last = (status or {}).get("last_result") or {}
        if last.get("cut_id") == cut_id:
            if last.get("outcome") in ("activated", "already-active"):
                return
            if last.get("outcome") == "rejected":
                raise PushFailure(
                    f"rejected:{last.get('reason', '?')}",
                    f"host rejected cut {cut_id}: {last.get('reason')}: {last.get('detail', '')}",
                )
        time.sleep(POLL_SECONDS)
    raise PushFailure(
        "not-confirmed", f"cut {cut_id} not confirmed active before the budget ran out"
    )


def push_node(
    cut: PreparedCut,
    difusor: Difusor,
    node: Node,
    credentials: Credentials,
    budget_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> NodeResult:
    """Push ``cut`` to one node within ``budget_s`` seconds, retrying with backoff."""
    result = NodeResult(difusor.id, f"{node.host}:{node.port}", cut.manifest.cut_id)
    start = time.monotonic()
    deadline = start + budget_s
    root = difusor.publication_path
    incoming = posixpath.join(root, "incoming")
    staging = posixpath.join(incoming, cut.manifest.cut_id + PART_SUFFIX)
    full = False  # after a rejection, resend everything: the host's copy may be damaged
    while True:
        result.attempts += 1
        try:
            with connect(node, difusor.sftp_user, credentials) as conn:
                sftp = conn.sftp()
                sftp.get_channel().settimeout(max(1.0, deadline - time.monotonic()))
                remote = (
                    None if full else read_json(sftp, posixpath.join(root, "status", MANIFEST_NAME))
                )
                paths = files_to_send(cut, remote)
                clean_incoming(sftp, incoming)
                result.bytes_sent += upload(sftp, cut, paths, staging)
                result.files_sent += len(paths)
                sftp.rename(staging, posixpath.join(incoming, cut.manifest.cut_id))
                wait_for_activation(
                    sftp,
                    posixpath.join(root, "status", "status.json"),
                    cut.manifest.cut_id,
                    deadline,
                )
            result.outcome, result.error_class, result.error = "confirmed", "", ""
            break
        except PushFailure as exc:
            result.error_class, result.error = exc.error_class, str(exc)
            full = full or exc.error_class.startswith("rejected:")
            retry = exc.retry
        except (OSError, EOFError, paramiko.SSHException) as exc:
            result.error_class, result.error = _classify(exc), f"{node.host}:{node.port}: {exc}"
            retry = True
        pause = BACKOFF_SECONDS[min(result.attempts - 1, len(BACKOFF_SECONDS) - 1)]
        if not retry or time.monotonic() + pause >= deadline:
            break
        sleep(pause)
    result.duration_s = round(time.monotonic() - start, 3)
    return result


def _classify(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and "No space left" in str(exc):
        return "disk-full"
    if isinstance(exc, OSError | EOFError):
        return "sftp-io"
    return "ssh"


def push_difusor(
    cut: PreparedCut, difusor: Difusor, credentials: Credentials, budget_s: float
) -> DifusorResult:
    """Push to every node of one difusor, in parallel."""
    with ThreadPoolExecutor(max_workers=len(difusor.nodes)) as pool:
        nodes = list(
            pool.map(lambda n: push_node(cut, difusor, n, credentials, budget_s), difusor.nodes)
        )
    return DifusorResult(difusor.id, cut.manifest.cut_id, nodes)


def push_many(
    cut: PreparedCut,
    difusores: Iterable[Difusor],
    credentials: Credentials,
    budget_s: float,
    concurrency: int = 8,
    on_result: Callable[[DifusorResult], None] | None = None,
) -> list[DifusorResult]:
    """Push to many difusores with at most ``concurrency`` nodes in flight.

    Fabric's ``ThreadingGroup`` has no cap; with fifty difusores the IEC's own
    link and CPU would be split fifty ways and every push would miss its budget.
    """
    order = {d.id: d for d in difusores}
    done: dict[str, list[NodeResult]] = {d: [] for d in order}
    results: dict[str, DifusorResult] = {}
    lock = threading.Lock()

    def run(difusor: Difusor, node: Node) -> None:
        node_result = push_node(cut, difusor, node, credentials, budget_s)
        with lock:
            done[difusor.id].append(node_result)
            if len(done[difusor.id]) < len(difusor.nodes):
                return
            results[difusor.id] = DifusorResult(difusor.id, cut.manifest.cut_id, done[difusor.id])
        if on_result is not None:
            on_result(results[difusor.id])

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(run, d, n) for d in order.values() for n in d.nodes]
        for future in futures:
            future.result()
    return [results[d] for d in order]
