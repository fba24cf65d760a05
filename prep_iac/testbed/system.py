"""Running machine commands and inspecting processes and mounts, with errors that
say which command failed and what it printed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from prep_iac.testbed.errors import TestbedError


def run(
    cmd: Sequence[str], *, check: bool = True, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; on failure raise ``TestbedError`` quoting the command and its stderr."""
    try:
        result = subprocess.run(
            list(cmd), capture_output=True, text=True, input=input, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise TestbedError(f"'{' '.join(cmd)}' did not finish in {timeout:g} s") from exc
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise TestbedError(f"'{' '.join(cmd)}' failed ({result.returncode}): {detail}")
    return result


def cmdline(pid: int) -> list[str]:
    """The argument list of process ``pid`` (empty if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; fields follow the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def find_processes(*needles: str) -> list[int]:
    """Processes whose argument list contains every one of ``needles`` (as a substring)."""
    found = []
    for pid in pids():
        args = "\0".join(cmdline(pid))
        if args and all(needle in args for needle in needles):
            found.append(pid)
    return found


def children(pid: int) -> list[int]:
    return [p for p in pids() if ppid(p) == pid]


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    by_parent: dict[int, list[int]] = {}
    for p in pids():
        parent = ppid(p)
        if parent is not None:
            by_parent.setdefault(parent, []).append(p)
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(by_parent.get(current, []))
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes; its parent will reap it.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def terminate(pids_: Iterable[int], timeout: float) -> None:
    """SIGTERM each process, wait up to ``timeout`` s, then SIGKILL what is left."""
    targets = [p for p in pids_ if alive(p)]
    for pid in targets:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in targets):
        time.sleep(0.05)
    for pid in targets:
        if alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in targets):
        time.sleep(0.05)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below ``directory``, deepest first (the order to unmount)."""
    prefix = str(directory).rstrip("/")
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def loop_devices_backed_by(directory: Path) -> list[str]:
    """Loop devices whose backing file lies under ``directory``."""
    prefix = str(directory).rstrip("/") + "/"
    found = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            target = backing.read_text().strip()
        except OSError:
            continue
        if target.startswith(prefix):
            found.append(f"/dev/{backing.parent.parent.name}")
    return found
