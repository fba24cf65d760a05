"""Fabric/Invoke tasks for the IEC operator: generate the signing key, sign, push, read status.

The same operations as ``prep-iac keys|sign|push|host-status``, for operators
who script with Fabric. Load the collection from this file::

    fab --search-root "$(python -c 'import prep_iac.publish as p; print(p.__path__[0])')" \\
        -c tasks push --cut /var/prep/cortes/20180701_2000 --difusores difusores.yaml \\
        --ssh-key ~/.ssh/iec_ed25519 --signing-key ~/iec/signing_ed25519

(``invoke`` takes the same flags.) Each task prints JSON and fails (exit 1)
when a difusor did not confirm the cut.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from prep_iac.models.difusor import DifusorStatus, Registry
from prep_iac.models.loading import load_model
from prep_iac.presets import load_election
from prep_iac.publish.prepare import prepare_cut
from prep_iac.publish.push import Credentials, push_many, read_status
from prep_iac.publish.signing import allowed_signers_line, generate_signing_key


@task(help={"path": "Where the private key goes (PATH.pub beside it)."})
def signing_key(c: Context, path: str) -> None:
    """Create the IEC's Ed25519 cut-signing key; print its allowed_signers line."""
    key = generate_signing_key(Path(path))
    print(allowed_signers_line(key.with_name(key.name + ".pub")), end="")


@task(
    help={
        "cut": "Cut directory, .zip or .tar.*.",
        "election": "Election preset or YAML file.",
        "signing_key": "The IEC's signing private key.",
        "out": "Directory for manifests/<cut>/manifest.json(.sig).",
    }
)
def sign(c: Context, cut: str, election: str, signing_key: str, out: str) -> None:
    """Build and sign a cut's manifest."""
    prepared = prepare_cut(Path(cut), load_election(election), Path(signing_key), Path(out))
    print(
        json.dumps(
            {
                "cut_id": prepared.manifest.cut_id,
                "files": len(prepared.manifest.files),
                "bytes": prepared.manifest.total_bytes,
                "manifest": str(Path(out) / "manifests" / prepared.manifest.cut_id),
            }
        )
    )


@task(
    help={
        "cut": "Cut directory, .zip or .tar.*.",
        "difusores": "Registry of difusores (YAML).",
        "ssh_key": "The IEC's SSH private key.",
        "signing_key": "The IEC's signing private key.",
        "concurrency": "Nodes pushed at once.",
        "source_address": "Local address to connect from.",
    }
)
def push(
    c: Context,
    cut: str,
    difusores: str,
    ssh_key: str,
    signing_key: str,
    concurrency: int = 8,
    source_address: str = "",
) -> None:
    """Sign a cut and push it to every active difusor of the registry."""
    registry = load_model(Registry, Path(difusores))
    election = load_election(registry.election)
    targets = [d for d in registry.difusores if d.status == DifusorStatus.ACTIVE]
    credentials = Credentials(Path(ssh_key), source_address=source_address or None)
    with tempfile.TemporaryDirectory(prefix="prep-push-") as work:
        prepared = prepare_cut(Path(cut), election, Path(signing_key), Path(work))
        results = push_many(
            prepared, targets, credentials, election.transfer_budget_seconds, concurrency
        )
    print(json.dumps([dataclasses.asdict(n) for r in results for n in r.nodes], indent=2))
    if not all(r.ok for r in results):
        raise Exit(code=1)


@task(
    help={
        "difusores": "Registry of difusores (YAML).",
        "difusor": "Difusor id.",
        "ssh_key": "The IEC's SSH private key.",
        "source_address": "Local address to connect from.",
    }
)
def host_status(
    c: Context, difusores: str, difusor: str, ssh_key: str, source_address: str = ""
) -> None:
    """Print each node's status.json."""
    target = load_model(Registry, Path(difusores)).get(difusor)
    credentials = Credentials(Path(ssh_key), source_address=source_address or None)
    print(
        json.dumps(
            {f"{n.host}:{n.port}": read_status(target, n, credentials) for n in target.nodes},
            indent=2,
        )
    )


namespace = Collection(signing_key, sign, push, host_status)
