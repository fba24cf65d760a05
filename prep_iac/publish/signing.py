"""Sign cut manifests and instructions with the IEC's signing key (``ssh-keygen -Y``).

The signing key is separate from the SSH key that logs into difusor hosts: a
stolen SSH key can upload files, but without the signing key nothing it uploads
is ever activated. Hosts verify with ``ssh-keygen -Y verify`` against an
``allowed_signers`` file that the difusor deploy installs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from prep_iac.hostside.activate import SIGNATURE_NAMESPACE, SIGNATURE_SUFFIX, SIGNER_IDENTITY


class SigningError(RuntimeError):
    """ssh-keygen could not sign or verify; the message says which file and why."""


def generate_signing_key(path: Path, comment: str = "iec-prep-signing") -> Path:
    """Create an Ed25519 signing key at ``path`` (private, 0600) and ``path.pub``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _keygen(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], path)
    return path


def allowed_signers_line(public_key: Path) -> str:
    """The ``allowed_signers`` line that lets hosts trust ``public_key`` for cuts only."""
    key_type, blob, *_ = public_key.read_text().split()
    return f'{SIGNER_IDENTITY} namespaces="{SIGNATURE_NAMESPACE}" {key_type} {blob}\n'


def sign_file(key: Path, document: Path) -> Path:
    """Sign ``document`` with ``key``; return the detached signature path (``.sig``)."""
    signature = document.with_name(document.name + SIGNATURE_SUFFIX)
    signature.unlink(missing_ok=True)
    _keygen(
        ["-q", "-Y", "sign", "-f", str(key), "-n", SIGNATURE_NAMESPACE, str(document)], document
    )
    return signature


def verify_file(allowed_signers: Path, document: Path) -> None:
    """Verify ``document`` against its ``.sig`` the way a difusor host does."""
    signature = document.with_name(document.name + SIGNATURE_SUFFIX)
    with document.open("rb") as stdin:
        result = subprocess.run(
            [
                "ssh-keygen", "-Y", "verify", "-f", str(allowed_signers), "-I", SIGNER_IDENTITY,
                "-n", SIGNATURE_NAMESPACE, "-s", str(signature),
            ],
            stdin=stdin, capture_output=True, text=True, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        raise SigningError(f"{document}: signature not valid: {result.stderr.strip()}")


def _keygen(args: list[str], subject: Path) -> None:
    result = subprocess.run(
        ["ssh-keygen", *args], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise SigningError(f"{subject}: ssh-keygen failed: {result.stderr.strip()}")
