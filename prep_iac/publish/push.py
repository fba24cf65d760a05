"""Push a signed cut to difusor nodes over SFTP and wait for the host to confirm it.

One push to one node:

1. connect with the IEC's SSH key, accepting only the node's pinned host key;
2. read the host's live manifest (``status/manifest.json``) and send only the
   files whose hash differs, as one tar bundle (gzipped when that pays), and a
   manifest patch against that manifest; everything and a full manifest when
   the host has nothing readable (see ``prep_iac.publish.prepare.Upload``);
3. upload into ``incoming/<cut>.part/`` (three files, each one pipelined
   write), then rename it to ``incoming/<cut>/``: the host's activation sees
   complete uploads only;
4. poll ``status/status.json`` until the host reports the cut active, or
   rejected, or the election's transfer budget runs out;
5. with a freshness statement (the orchestrator sends one every period, to
   every node, see ``prep_iac.publish.freshness``): upload it the same way
   (signature first, the JSON renamed into place) and poll until the host
   reports it held. A node is confirmed only when both hold: the cut is live
   and the IEC's newest statement for it is accepted.

Failures are retried with backoff inside the budget. Every outcome comes back
as a ``NodeResult`` with bytes sent, duration and an error class, which the
orchestrator records; nothing here raises for a difusor's fault.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import posixpath
import socket
import stat
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection

from prep_iac.models.difusor import Difusor, HostKey, Node
from prep_iac.publish.freshness import SignedStatement
from prep_iac.publish.prepare import PreparedCut, Upload
from prep_iac.wire import (
    BUNDLE_NAME,
    MANIFEST_NAME,
    PART_SUFFIX,
    PATCH_NAME,
    SIGNATURE_SUFFIX,
    State,
    is_live,
    iso,
    sequence,
    statement_name,
    vouched_by,
)

POLL_SECONDS = 0.1
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0)
# Re-announce a renamed upload this often while it waits: a path event that
# arrived while the host's activation was already running is not queued.
KICK_SECONDS = 2.0
# Room for status and log writes beyond the upload and the release it builds.
SPACE_MARGIN = 4 << 20
RESENDABLE = frozenset(
    f"rejected:{reason}"
    for reason in (
        "missing-file", "size-mismatch", "hash-mismatch", "bad-patch-base", "bad-bundle",
    )
)  # fmt: skip


class KnownManifests:
    """Manifests this process has pushed, by SHA-256 (the newest few).

    A host's status names its live manifest's SHA-256; when it is one of these,
    the push has the base of its patch without downloading ~700 kB over a link
    that may be slow.
    """

    def __init__(self, keep: int = 16) -> None:
        self._keep = keep
        self._by_sha: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, manifest_bytes: bytes) -> None:
        sha = hashlib.sha256(manifest_bytes).hexdigest()
        with self._lock:
            self._by_sha[sha] = manifest_bytes
            self._by_sha.move_to_end(sha)
            while len(self._by_sha) > self._keep:
                self._by_sha.popitem(last=False)

    def get(self, sha: object) -> bytes | None:
        with self._lock:
            return self._by_sha.get(sha) if isinstance(sha, str) else None

    def clear(self) -> None:
        with self._lock:
            self._by_sha.clear()


KNOWN_MANIFESTS = KnownManifests()


@dataclass
class NodeResult:
    """What happened when pushing one cut to one node."""

    difusor: str
    node: str
    cut_id: str
    outcome: str = "failed"  # "confirmed", "failed", or "untried" (no time left at its turn)
    bytes_sent: int = 0
    files_sent: int = 0
    attempts: int = 0
    duration_s: float = 0.0
    upload_s: float = 0.0  # the last attempt's upload, up to the rename
    activation_s: float = 0.0  # rename until the host's status showed the cut live
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


# Paramiko's negotiation limit over each step's (banner, key exchange, authentication).
NEGOTIATION_MARGIN_S = 0.5
# How long closing a connection waits for paramiko's thread to see the shutdown.
JOIN_S = 1.0


@dataclass(frozen=True)
class Credentials:
    """How the IEC logs in: its SSH private key (not the signing key)."""

    key_filename: Path
    connect_timeout: float = 10.0
    compress: bool = True
    source_address: str | None = None  # bind here (a host that admits the IEC by address)
    # A transfer that makes no progress this long is abandoned and retried.
    stall_timeout: float = 15.0


def host_key_entry(node: Node) -> str:
    return node.host if node.port == 22 else f"[{node.host}]:{node.port}"


def pinned_pkey(key: HostKey) -> paramiko.PKey:
    return paramiko.PKey.from_type_string(key.type, base64.b64decode(key.key))


@contextlib.contextmanager
def connect(
    node: Node, user: str, credentials: Credentials, timeout: float | None = None
) -> Iterator[Connection]:
    """A Fabric connection that accepts only the node's pinned host key.

    Every step of opening it (TCP connect, banner, key exchange, authentication,
    and each channel opened on it, such as SFTP's) waits at most ``timeout``
    seconds (default and cap: the credentials' connect timeout). Paramiko's own
    defaults are 15 s for the key exchange and an hour for a channel: a server
    that authenticates and then never opens the SFTP channel would hold a worker
    for an hour.
    """
    limit = credentials.connect_timeout
    limit = limit if timeout is None else max(0.1, min(timeout, limit))

    def transport(sock: socket.socket, **kwargs: Any) -> paramiko.Transport:
        made = paramiko.Transport(sock, **kwargs)
        made.handshake_timeout = limit
        return made

    try:
        sock = socket.create_connection(
            (node.host, node.port),
            timeout=limit,
            source_address=(credentials.source_address, 0) if credentials.source_address else None,
        )
    except OSError as exc:
        raise _connect_failure(exc, node, user) from exc
    conn = Connection(
        node.host,
        user=user,
        port=node.port,
        config=Config(overrides={"load_ssh_configs": False}),
        # Paramiko waits this long for the whole negotiation: a little longer than each
        # step's own limit, so a stalled step fails first and its thread ends by itself.
        connect_timeout=limit + NEGOTIATION_MARGIN_S,
        connect_kwargs={
            "key_filename": str(credentials.key_filename),
            "look_for_keys": False,
            "allow_agent": False,
            "compress": credentials.compress,
            "banner_timeout": limit,
            "auth_timeout": limit,
            "channel_timeout": limit,
            "transport_factory": transport,
            "sock": sock,
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
        _close(conn, sock)
        raise _connect_failure(exc, node, user) from exc
    try:
        yield conn
    finally:
        _close(conn, sock)


def _close(conn: Connection, sock: socket.socket) -> None:
    """Stop paramiko's transport thread before the socket goes away.

    After a failed ``open`` (a changed host key) Fabric has no transport to
    close, yet paramiko's thread still reads the socket: closing it under that
    thread made it log "Socket exception: Bad file descriptor". Shutting the
    socket down first gives the thread a clean end of file; then it is joined.
    """
    transport = conn.client.get_transport()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    conn.client.close()
    if transport is not None and transport.is_alive():
        # The shutdown's end of file ends it; never wait long (a worker is held meanwhile).
        transport.join(JOIN_S)
    conn.close()
    sock.close()


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
    if isinstance(exc, EOFError):  # paramiko's end of a key exchange that never came
        return PushFailure("ssh", f"{where}: the SSH handshake did not finish (closed or stalled)")
    if isinstance(exc, OSError):
        return PushFailure("unreachable", f"{where}: {exc.strerror or exc}")
    return exc


def read_bytes(sftp: paramiko.SFTPClient, path: str) -> bytes | None:
    """A file from the host, or None when absent or unreadable."""
    try:
        with sftp.open(path, "rb") as handle:
            handle.prefetch()
            return bytes(handle.read())
    except OSError:
        return None


def read_json(sftp: paramiko.SFTPClient, path: str) -> dict[str, Any] | None:
    """A small JSON file from the host, or None when absent or unreadable."""
    try:
        return read_json_strict(sftp, path)
    except OSError:
        return None


def read_json_strict(sftp: paramiko.SFTPClient, path: str) -> dict[str, Any] | None:
    """Like ``read_json``, but a lost link raises (OSError, EOFError or SSHException)
    instead of reading as "no status yet"."""
    try:
        with sftp.open(path, "rb") as handle:
            data = json.loads(handle.read())
    except (FileNotFoundError, PermissionError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class Space:
    """What ``statvfs`` says of one remote filesystem: bytes available to the account, its id."""

    free: int
    fsid: int


def free_space(sftp: paramiko.SFTPClient, path: str) -> Space | None:
    """Space available to the SFTP account under ``path`` (OpenSSH's statvfs extension).

    paramiko has no public call for it, hence its request primitive; None when
    the server does not answer it.
    """
    try:
        request = getattr(sftp, "_request")  # noqa: B009 (private in paramiko, typed as such)
        kind, msg = request(paramiko.sftp.CMD_EXTENDED, "statvfs@openssh.com", path)
        if kind != paramiko.sftp.CMD_EXTENDED_REPLY:
            return None
        fields = struct.unpack(">11Q", msg.get_bytes(88))
    except (OSError, EOFError, paramiko.SSHException, struct.error):
        return None
    bsize, frsize, _blocks, _bfree, bavail, _files, _ffree, _favail, fsid = fields[:9]
    return Space(free=int(bavail * (frsize or bsize)), fsid=int(fsid))


def space_needed(cut: PreparedCut, payload: Upload) -> dict[str, int]:
    """Bytes the host must have free, per place: the upload in ``incoming/`` (an
    upload area of its own), and in ``releases/`` the files it writes into the new
    release (unchanged ones are hard links: no space) and the release's manifest,
    kept twice (``releases/`` and ``status/``)."""
    return {
        "incoming": payload.size + SPACE_MARGIN,
        "releases": payload.raw_bytes + 2 * len(cut.manifest_bytes) + SPACE_MARGIN,
    }


def check_space(sftp: paramiko.SFTPClient, root: str, needed: dict[str, int]) -> None:
    """Fail before uploading when a place cannot hold what it needs; places on one
    filesystem must hold their sum."""
    spaces = {place: free_space(sftp, posixpath.join(root, place)) for place in needed}
    for space in spaces.values():
        if space is None:
            continue
        together = [p for p, s in spaces.items() if s is not None and s.fsid == space.fsid]
        wanted = sum(needed[p] for p in together)
        if space.free < wanted:
            raise PushFailure(
                "disk-full",
                f"host has {space.free} bytes free in {'/'.join(together)}/, the upload needs"
                f" {wanted}",
                retry=False,
            )


def exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except OSError:
        return False
    return True


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
    """Remove what interrupted uploads left: ``<cut>.part/`` directories and the
    ``.<name>.part`` files of statements and instructions."""
    for entry in sftp.listdir_attr(incoming):
        if not entry.filename.endswith(PART_SUFFIX):
            continue
        path = posixpath.join(incoming, entry.filename)
        if entry.st_mode is not None and stat.S_ISDIR(entry.st_mode):
            remove_tree(sftp, path)
        else:
            sftp.remove(path)


def upload_signed(
    sftp: paramiko.SFTPClient, incoming: str, name: str, document: bytes, signature: bytes
) -> str:
    """Upload a signed statement or instruction as ``incoming/<name>`` (+ ``.sig``).

    The signature goes first and the JSON under a hidden ``.part`` name renamed
    into place, so the host never sees a JSON without its signature, nor half
    of one; what an interrupted upload leaves is removed by ``clean_incoming``.
    """
    final = posixpath.join(incoming, name)
    staging = posixpath.join(incoming, f".{name}{PART_SUFFIX}")
    sftp.putfo(io.BytesIO(signature), final + SIGNATURE_SUFFIX, confirm=False)
    sftp.putfo(io.BytesIO(document), staging, confirm=False)
    sftp.rename(staging, final)
    return final


def upload(sftp: paramiko.SFTPClient, payload: Upload, signature: bytes, staging: str) -> int:
    """Upload the bundle, the manifest patch and the signature under ``staging``; return bytes."""
    sftp.mkdir(staging)
    sent = 0
    for name, data in (
        (BUNDLE_NAME, payload.bundle),
        (PATCH_NAME, payload.patch),
        (MANIFEST_NAME + SIGNATURE_SUFFIX, signature),
    ):
        # putfo pipelines its writes (paramiko #1660); the host verifies every byte anyway.
        sftp.putfo(io.BytesIO(data), posixpath.join(staging, name), confirm=False)
        sent += len(data)
    return sent


def host_manifest(
    sftp: paramiko.SFTPClient, root: str, status: dict[str, Any] | None
) -> bytes | None:
    """The host's live manifest: from memory when its status names one pushed before."""
    known = KNOWN_MANIFESTS.get((status or {}).get("manifest_sha256"))
    if known is not None:
        return known
    return read_bytes(sftp, posixpath.join(root, "status", MANIFEST_NAME))


def wait_for_activation(
    sftp: paramiko.SFTPClient,
    status_path: str,
    cut_id: str,
    deadline: float,
    upload_dir: str,
    after: int,
) -> None:
    """Poll the host's status until it reports ``cut_id`` active, or rejected in an
    outcome recorded after sequence number ``after`` (older verdicts are not ours)."""
    kicked = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() - kicked >= KICK_SECONDS:
            kicked = time.monotonic()
            # An attribute change of the entry is a new PathChanged event; gone means taken.
            with contextlib.suppress(OSError):
                sftp.chmod(upload_dir, 0o750)
        # A link lost now fails the attempt, so the retry reconnects and finds
        # the verdict, instead of polling a dead channel until the budget is gone.
        status = read_json_strict(sftp, status_path)
        if is_live(status, cut_id):
            return
        last = (status or {}).get("last_result") or {}
        if last.get("cut_id") == cut_id and sequence(status) > after:
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


def send_statement(
    sftp: paramiko.SFTPClient, root: str, statement: SignedStatement, deadline: float
) -> int:
    """Have the host hold ``statement``; return the bytes sent (0 if it already held it).

    Waits, like a cut, for the host's status to name it as its newest
    statement, or for a rejection of it recorded after the upload.
    """
    status_path = posixpath.join(root, "status", "status.json")
    issued = iso(statement.statement.issued_at)
    status = read_json_strict(sftp, status_path)
    if vouched_by(status) == issued:
        return 0  # an earlier attempt's upload was applied after the link was lost
    incoming = posixpath.join(root, "incoming")
    name = statement_name(statement.statement.issued_at)
    after = sequence(status)
    clean_incoming(sftp, incoming)
    final = upload_signed(sftp, incoming, name, statement.document, statement.signature)
    kicked = time.monotonic()
    while time.monotonic() < deadline:
        status = read_json_strict(sftp, status_path)
        if vouched_by(status) == issued:
            return len(statement.document) + len(statement.signature)
        last = (status or {}).get("last_result") or {}
        mine = last.get("document") == name and sequence(status) > after
        if mine and last.get("outcome") == "rejected":
            raise PushFailure(
                f"rejected:{last.get('reason', '?')}",
                f"host rejected statement {name}: {last.get('reason')}: {last.get('detail', '')}",
                retry=False,
            )
        if time.monotonic() - kicked >= KICK_SECONDS:
            kicked = time.monotonic()
            with contextlib.suppress(OSError):  # a new path event, as for a cut
                sftp.chmod(final, 0o640)
        time.sleep(POLL_SECONDS)
    raise PushFailure("not-confirmed", f"statement {name} not held before the budget ran out")


def send_cut(
    sftp: paramiko.SFTPClient,
    cut: PreparedCut,
    root: str,
    status: dict[str, Any] | None,
    full: bool,
    deadline: float,
    result: NodeResult,
) -> None:
    """Upload ``cut`` to a host whose status is ``status`` and wait until it is active;
    ``result`` gets the bytes, files and times. ``full`` resends every file."""
    cut_id = cut.manifest.cut_id
    status_path = posixpath.join(root, "status", "status.json")
    incoming = posixpath.join(root, "incoming")
    complete = posixpath.join(incoming, cut_id)
    if exists(sftp, complete):
        # An earlier attempt's complete upload the host has not taken yet
        # (or is verifying now): let it finish rather than pull it away.
        wait_for_activation(sftp, status_path, cut_id, deadline, complete, sequence(status))
        return
    remote = None if full else host_manifest(sftp, root, status)
    payload = cut.upload_for(remote)
    clean_incoming(sftp, incoming)
    check_space(sftp, root, space_needed(cut, payload))
    staging = posixpath.join(incoming, cut_id + PART_SUFFIX)
    uploading = time.monotonic()
    try:
        result.bytes_sent += upload(sftp, payload, cut.signature, staging)
    except OSError:
        check_space(sftp, root, {"incoming": SPACE_MARGIN})
        raise
    result.files_sent += len(payload.paths)
    sftp.rename(staging, complete)
    renamed = time.monotonic()
    result.upload_s = round(renamed - uploading, 3)
    wait_for_activation(sftp, status_path, cut_id, deadline, complete, sequence(status))
    result.activation_s = round(time.monotonic() - renamed, 3)


def push_node(
    cut: PreparedCut,
    difusor: Difusor,
    node: Node,
    credentials: Credentials,
    budget_s: float,
    sleep: Callable[[float], None] = time.sleep,
    statement: SignedStatement | None = None,
    deadline: float | None = None,
    fail_fast: bool = False,
) -> NodeResult:
    """Push ``cut`` (and ``statement``, when given) to one node within ``budget_s``
    seconds, retrying with backoff; confirmed once the host holds both.

    + deadline: a ``time.monotonic()`` instant no attempt outlives (the period's, shared
      by every node of a round), whatever is left of ``budget_s``
    + fail_fast: a node no SFTP session could be opened with (unreachable, connect,
      banner or channel timeout, refused key...) gives its worker back at once instead of retrying
      in place: the caller tries again later
    """
    result = NodeResult(difusor.id, f"{node.host}:{node.port}", cut.manifest.cut_id)
    start = time.monotonic()
    deadline = min(start + budget_s, deadline if deadline is not None else start + budget_s)
    root = difusor.publication_path
    full = False  # after a rejection, resend everything: the host's copy may be damaged
    KNOWN_MANIFESTS.remember(cut.manifest_bytes)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:  # picked up after the round's deadline: no attempt can finish
            if not result.attempts:
                result.outcome, result.error_class = "untried", "timeout"
                result.error = f"{result.node}: no time left in the budget for a first attempt"
            break
        result.attempts += 1
        connected = False
        try:
            with connect(node, difusor.sftp_user, credentials, timeout=left) as conn:
                sftp = conn.sftp()
                connected = True  # a session: an SFTP channel, not only a login
                channel = sftp.get_channel()
                assert channel is not None  # an open SFTP client has its channel
                channel.settimeout(
                    max(1.0, min(credentials.stall_timeout, deadline - time.monotonic()))
                )
                status = read_json(sftp, posixpath.join(root, "status", "status.json"))
                # A host showing the notice only because its vouch ran out holds the
                # cut still: the statement alone brings it back.
                stale = (status or {}).get("state") == State.STALE
                has_cut = (status or {}).get("cut_id") == cut.manifest.cut_id
                if not (is_live(status, cut.manifest.cut_id) or (statement and stale and has_cut)):
                    send_cut(sftp, cut, root, status, full, deadline, result)
                if statement is not None:
                    result.bytes_sent += send_statement(sftp, root, statement, deadline)
            result.outcome, result.error_class, result.error = "confirmed", "", ""
            break
        except PushFailure as exc:
            result.error_class, result.error = exc.error_class, str(exc)
            rejected = exc.error_class.startswith("rejected:")
            # A file damaged in transit or on the host deserves one full resend;
            # a bad signature or a replay is refused again whatever we send.
            retry = exc.retry and not (rejected and (full or exc.error_class not in RESENDABLE))
            retry = retry and not (fail_fast and not connected)
            full = full or rejected
        except (OSError, EOFError, paramiko.SSHException) as exc:
            result.error_class, result.error = _classify(exc), f"{node.host}:{node.port}: {exc}"
            retry = not (fail_fast and not connected)
        pause = BACKOFF_SECONDS[min(result.attempts - 1, len(BACKOFF_SECONDS) - 1)]
        if not retry or time.monotonic() + pause >= deadline:
            break
        sleep(pause)
    result.duration_s = round(time.monotonic() - start, 3)
    return result


def read_status(difusor: Difusor, node: Node, credentials: Credentials) -> dict[str, Any] | None:
    """The host's ``status/status.json`` (what it serves, last outcome), or None if absent.

    Connection problems raise ``PushFailure`` with the same error classes as a push.
    """
    with connect(node, difusor.sftp_user, credentials) as conn:
        return read_json(
            conn.sftp(), posixpath.join(difusor.publication_path, "status", "status.json")
        )


def _classify(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and "No space left" in str(exc):
        return "disk-full"
    if isinstance(exc, OSError | EOFError):
        return "sftp-io"
    return "ssh"


def push_difusor(
    cut: PreparedCut,
    difusor: Difusor,
    credentials: Credentials,
    budget_s: float,
    statement: SignedStatement | None = None,
) -> DifusorResult:
    """Push to every node of one difusor, in parallel (with ``statement``, when given)."""
    with ThreadPoolExecutor(max_workers=len(difusor.nodes)) as pool:
        nodes = list(
            pool.map(
                lambda n: push_node(cut, difusor, n, credentials, budget_s, statement=statement),
                difusor.nodes,
            )
        )
    return DifusorResult(difusor.id, cut.manifest.cut_id, nodes)


def push_many(
    cut: PreparedCut,
    difusores: Iterable[Difusor],
    credentials: Credentials,
    budget_s: float,
    concurrency: int = 8,
    on_result: Callable[[DifusorResult], None] | None = None,
    statements: Mapping[str, SignedStatement] | None = None,
    fail_fast: bool = False,
) -> list[DifusorResult]:
    """Push to many difusores with at most ``concurrency`` nodes in flight; each gets
    its own freshness statement from ``statements`` (by difusor id), when given.

    One deadline for all, ``budget_s`` from now: a node a worker picks up late
    gets what is left, never a budget of its own that would run past the
    caller's period. Fabric's ``ThreadingGroup`` has no cap; with fifty
    difusores the IEC's own link and CPU would be split fifty ways and every
    push would miss its budget. ``fail_fast``: see ``push_node``.
    """
    deadline = time.monotonic() + budget_s
    order = {d.id: d for d in difusores}
    done: dict[str, list[NodeResult]] = {d: [] for d in order}
    results: dict[str, DifusorResult] = {}
    lock = threading.Lock()

    def run(difusor: Difusor, node: Node) -> None:
        statement = None if statements is None else statements.get(difusor.id)
        node_result = push_node(
            cut, difusor, node, credentials, budget_s, statement=statement, deadline=deadline,
            fail_fast=fail_fast,
        )  # fmt: skip
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
