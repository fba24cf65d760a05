"""The testbed's SSH identity and client files: the admin key generated at run
time, ``ssh_config`` and ``known_hosts`` with every host's pinned key."""

from __future__ import annotations

import subprocess
from pathlib import Path

from prep_iac.models.difusor import HostKey
from prep_iac.testbed import render
from prep_iac.testbed.network import require_testbed_address
from prep_iac.testbed.state import HostState
from prep_iac.testbed.system import run


class SshFiles:
    """Paths of one testbed's key and client config, under its state directory."""

    def __init__(self, testbed_dir: Path) -> None:
        self.key = testbed_dir / "id_ed25519"
        self.public_key = testbed_dir / "id_ed25519.pub"
        self.config = testbed_dir / "ssh_config"
        self.known_hosts = testbed_dir / "known_hosts"


def generate_admin_key(files: SshFiles, comment: str) -> str:
    """Create the testbed's ed25519 admin key (mode 0600) if missing; return its public line."""
    if not files.key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(files.key)])
    files.key.chmod(0o600)
    return files.public_key.read_text().strip()


def write_client_files(files: SshFiles, name: str, hosts: list[HostState]) -> None:
    """Write ``ssh_config`` and ``known_hosts`` for the hosts that have a pinned key."""
    pinned = [h for h in hosts if h.host_key]
    render.write(files.known_hosts, "known_hosts.j2", hosts=pinned)
    render.write(
        files.config,
        "ssh_config.j2",
        name=name,
        config_path=files.config,
        hosts=pinned,
        key=files.key,
        known_hosts=files.known_hosts,
    )


def command(files: SshFiles, host: HostState, remote: str | None = None) -> list[str]:
    """The ``ssh`` command line that reaches ``host`` as root with the pinned key."""
    require_testbed_address(host.address)
    cmd = ["ssh", "-F", str(files.config), host.name]
    return [*cmd, remote] if remote is not None else cmd


def run_on(
    files: SshFiles, host: HostState, remote: str, *, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the shell command ``remote`` on ``host`` over SSH."""
    return run(command(files, host, remote), check=check, timeout=timeout)


def keyscan(address: str, port: int = 22) -> list[HostKey]:
    """The host keys a server presents, as ``ssh-keyscan`` sees them."""
    require_testbed_address(address)
    out = run(["ssh-keyscan", "-T", "5", "-p", str(port), address], check=False).stdout
    keys = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#"):
            keys.append(HostKey(type=parts[1], key=parts[2]))
    return keys
