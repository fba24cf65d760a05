"""The caching apt proxy (apt-cacher-ng) the hosts get their packages through.

One instance is shared by every testbed on the machine, refcounted by testbed
name: the first ``up`` starts it, the last ``down`` stops it. Sharing, rather
than one proxy per testbed, lets concurrent testbeds (a test run and a drill)
use one persistent cache without two processes writing the same files. It runs
as its own process with its own config directory (``-c``), listens only on the
testbed proxy address (198.19.255.1, on loopback) and keeps its cache
under ``/var/cache/prep-iac/apt-cacher-ng`` across runs, and its logs under
``/var/log/prep-iac/apt-cacher-ng`` (they outlive the proxy: a fetch that stalled
in a test run can be read after its teardown).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

from pydantic import BaseModel, ConfigDict, Field

from prep_iac.testbed import render
from prep_iac.testbed.errors import TestbedError
from prep_iac.testbed.settings import TestbedSettings
from prep_iac.testbed.state import locked, recorded_names
from prep_iac.testbed.system import alive, cmdline, find_processes, run, terminate

STATE = "proxy.json"


class ProxyState(BaseModel):
    """The running proxy and the testbeds that use it."""

    model_config = ConfigDict(extra="forbid")

    pid: int | None = None
    users: list[str] = Field(default_factory=list)


def _load(settings: TestbedSettings) -> ProxyState:
    path = settings.proxy_root / STATE
    if not path.is_file():
        return ProxyState()
    return ProxyState.model_validate_json(path.read_text())


def _save(settings: TestbedSettings, state: ProxyState) -> None:
    settings.proxy_root.mkdir(parents=True, exist_ok=True)
    tmp = settings.proxy_root / f".{STATE}.tmp"
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.replace(settings.proxy_root / STATE)


def _conf_dir(settings: TestbedSettings) -> str:
    return str(settings.proxy_root / "conf")


def _running(settings: TestbedSettings, pid: int | None) -> bool:
    return pid is not None and alive(pid) and _conf_dir(settings) in cmdline(pid)


def acquire(settings: TestbedSettings, user: str) -> None:
    """Register testbed ``user`` with the proxy, starting the proxy if none runs."""
    with locked(settings.run_dir / "proxy.lock"):
        state = _load(settings)
        if user not in state.users:
            state.users.append(user)
        _save(settings, state)  # recorded first, so a killed up is still released by down
        if not _running(settings, state.pid):
            state.pid = _start(settings)
            _save(settings, state)


def release(settings: TestbedSettings, user: str) -> None:
    """Unregister ``user``; stop the proxy and remove its files when nobody is left.

    Testbeds whose state directory is gone are dropped too, so a user lost in a
    crash cannot keep the proxy alive forever.
    """
    with locked(settings.run_dir / "proxy.lock"):
        state = _load(settings)
        living = set(recorded_names(settings.state_root)) - {user}
        state.users = [u for u in state.users if u in living]
        if state.users:
            _save(settings, state)
            return
        _stop(settings, state.pid)
        shutil.rmtree(settings.proxy_root, ignore_errors=True)


def _start(settings: TestbedSettings) -> int:
    _stop(settings, None)  # a stray from a crash would hold the port
    conf = settings.proxy_root / "conf"
    log_dir = settings.proxy_log
    log_dir.mkdir(parents=True, exist_ok=True)
    settings.apt_cache.mkdir(parents=True, exist_ok=True)
    render.write(
        conf / "acng.conf",
        "acng.conf.j2",
        cache_dir=settings.apt_cache,
        log_dir=log_dir,
        port=settings.proxy_port,
        address=settings.proxy_address,
        socket=settings.proxy_root / "acng.socket",
        pid_file=settings.proxy_root / "acng.pid",
    )
    render.write(conf / "backends_debian", "backends_debian.j2", mirror=settings.mirror)
    render.write(
        conf / "backends_debsec", "backends_debsec.j2", security_mirror=settings.security_mirror
    )
    # On loopback (this kernel has no dummy links): packets from a host's veth to
    # a local address are delivered locally, with no forwarding enabled.
    run(["ip", "addr", "replace", _address(settings), "dev", "lo", "label", settings.proxy_label])
    with (log_dir / "stdout.log").open("ab") as out:
        out.write(f"=== started {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
        out.flush()
        process = subprocess.Popen(
            ["apt-cacher-ng", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            # Typically the port is taken (e.g. Debian's own apt-cacher-ng on *:3142).
            said = (log_dir / "stdout.log").read_text(errors="replace").strip()[-500:]
            raise TestbedError(
                f"apt-cacher-ng exited with {process.returncode} "
                f"({settings.proxy_address}:{settings.proxy_port}): {said}"
            )
        try:
            socket.create_connection((str(settings.proxy_address), settings.proxy_port), 1).close()
            return process.pid
        except OSError:
            time.sleep(0.1)
    raise TestbedError(
        f"apt-cacher-ng did not listen on {settings.proxy_address}:{settings.proxy_port} in 15 s"
    )


def _stop(settings: TestbedSettings, pid: int | None) -> None:
    """Stop our apt-cacher-ng (by pid or by its config dir) and remove its address."""
    pids = set(find_processes("apt-cacher-ng", _conf_dir(settings)))
    if pid is not None and _running(settings, pid):
        pids.add(pid)
    terminate(pids, timeout=5)
    if has_address(settings):
        run(["ip", "addr", "del", _address(settings), "dev", "lo"])


def _address(settings: TestbedSettings) -> str:
    return f"{settings.proxy_address}/32"


def has_address(settings: TestbedSettings) -> bool:
    """Whether the proxy address is configured on the machine."""
    out = run(["ip", "-o", "-4", "addr", "show", "dev", "lo"]).stdout
    return f" {_address(settings)} " in out
