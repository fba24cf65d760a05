"""Sign cut manifests and instructions with the IEC's signing key (``ssh-keygen -Y``).

The signing key is separate from the SSH key that logs into difusor hosts: a
stolen SSH key can upload files, but without the signing key nothing it uploads
is ever activated. Hosts verify with ``ssh-keygen -Y verify`` against an
``allowed_signers`` file that the difusor deploy installs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from prep_iac.wire import CUT_NAMESPACE, NAMESPACES, SIGNATURE_SUFFIX, SIGNER_IDENTITY


class SigningError(RuntimeError):
    """ssh-keygen could not sign or verify; the message says which file and why."""


def generate_signing_key(path: Path, comment: str = "iec-prep-signing") -> Path:
    """Create an Ed25519 signing key at ``path`` (private, 0600) and ``path.pub``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _keygen(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], path)
    return path


def allowed_signers_line(public_key: Path, namespaces: tuple[str, ...] = NAMESPACES) -> str:
    """The ``allowed_signers`` line that lets hosts trust ``public_key`` for the IEC's
    signed documents (cuts, freshness statements, instructions) and nothing else."""
    key_type, blob, *_ = public_key.read_text().split()
    return f'{SIGNER_IDENTITY} namespaces="{",".join(namespaces)}" {key_type} {blob}\n'


def sign_file(key: Path, document: Path, namespace: str = CUT_NAMESPACE) -> Path:
    """Sign ``document`` with ``key`` in ``namespace``; return the detached signature
    path (``.sig``)."""
    signature = document.with_name(document.name + SIGNATURE_SUFFIX)
    signature.unlink(missing_ok=True)
    _keygen(["-q", "-Y", "sign", "-f", str(key), "-n", namespace, str(document)], document)
    return signature


def sign_bytes(key: Path, document: bytes, namespace: str) -> bytes:
    """The detached signature of ``document`` (``ssh-keygen -Y sign`` on standard input)."""
    result = subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", namespace],
        input=document, capture_output=True, check=False,
    )  # fmt: skip
    if result.returncode != 0 or not result.stdout:
        why = result.stderr.decode(errors="replace").strip() or "no signature written"
        raise SigningError(f"{key}: ssh-keygen could not sign a {namespace} document: {why}")
    return result.stdout


def verify_file(allowed_signers: Path, document: Path, namespace: str = CUT_NAMESPACE) -> None:
    """Verify ``document`` against its ``.sig`` the way a difusor host does."""
    signature = document.with_name(document.name + SIGNATURE_SUFFIX)
    with document.open("rb") as stdin:
        result = subprocess.run(
            [
                "ssh-keygen", "-Y", "verify", "-f", str(allowed_signers), "-I", SIGNER_IDENTITY,
                "-n", namespace, "-s", str(signature),
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
