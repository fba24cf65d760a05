"""Helpers shared by the testbed tests (the fixtures come from prep_iac's pytest plugin)."""

from __future__ import annotations

import socket
import subprocess
import sys

from prep_iac.testbed.network import require_testbed_address

PREP_IAC = [sys.executable, "-m", "prep_iac.cli"]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``prep-iac`` as an operator would."""
    return subprocess.run(
        [*PREP_IAC, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def tcp_outcome(address: str, port: int = 22, timeout: float = 2) -> str:
    """'open', 'refused' or 'timeout': what a TCP connection to the host meets."""
    require_testbed_address(address)
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return f"error: {exc}"
