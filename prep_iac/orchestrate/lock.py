"""One orchestrator per state: an exclusive lock on a file beside the SQLite database.

Two processes acting on the same state would undo each other: a second
``run`` (or a manual ``push`` or ``reinstate`` while ``run`` is live) removes
the first one's uploads as leftovers, and decides clause III twice. So
``run``, ``reinstate``, ``disable`` and ``push --db`` hold ``<db>.lock`` for as
long as they work, and a second one refuses at once, naming the holder.

The lock is ``flock(2)`` on ``<db>.lock``: the kernel drops it when its
holder exits in any way (also ``kill -9`` or a power cut), so there is never a
stale lock to clean up by hand. The holder writes its pid, host, start time and
command into the file for whoever is refused. Like SQLite's WAL mode, it needs
the database on a local file system.

**Example:**

```python
with state_lock(Path("/var/lib/prep-iac/orchestrator.sqlite3"), "run"):
    ...  # nobody else acts on this state meanwhile
```
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel


class Holder(BaseModel):
    """Who holds a state's lock."""

    pid: int
    host: str
    since: datetime
    command: str

    def describe(self) -> str:
        return (
            f"'{self.command}' (pid {self.pid} on {self.host}, since"
            f" {self.since.isoformat(timespec='seconds')})"
        )


class StateLocked(RuntimeError):
    """Another process holds the state's lock; the message names it."""

    def __init__(self, db: Path, holder: Holder | None) -> None:
        who = holder.describe() if holder else "another process (it has not said who yet)"
        super().__init__(
            f"{db} is in use by {who}: one orchestrator per state; stop it first"
            " (systemctl stop prep-iac-run) or wait for it to finish"
        )
        self.holder = holder


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


@contextmanager
def state_lock(db: Path, command: str) -> Iterator[Holder]:
    """Hold the lock of the state in ``db`` while the block runs; raise ``StateLocked`` if held.

    + db: the orchestrator's SQLite file (need not exist yet)
    + command: what holds it, for the refusal's message (``run``, ``disable uadec``...)
    """
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateLocked(db, _holder(fd)) from None
        holder = Holder(
            pid=os.getpid(), host=socket.gethostname(), since=datetime.now(UTC), command=command
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.model_dump_json().encode() + b"\n", 0)
        os.fsync(fd)
        try:
            yield holder
        finally:
            os.ftruncate(fd, 0)  # released: nobody to name
    finally:
        os.close(fd)  # drops the flock


def _holder(fd: int) -> Holder | None:
    """What the holder wrote, or None while it has not written yet."""
    text = os.pread(fd, 4096, 0)
    try:
        return Holder.model_validate(json.loads(text))
    except ValueError:  # also a ValidationError
        return None
