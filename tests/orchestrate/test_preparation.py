"""A cut the IEC cannot prepare or sign: an event and an operators' alert, never a crash.

The loop runs on a drill clock with the real preparation (hashing, ``ssh-keygen``
signing), the real push to loopback ports where nothing listens, and the real
SMTP server for the alerts.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from prep_iac.drill.mail import OPERATOR, notify_settings
from prep_iac.drill.mailbox import Mailbox, smtp_server
from prep_iac.models.difusor import Difusor, Registry
from prep_iac.orchestrate.runner import MARKER
from prep_iac.orchestrate.schedule import Period
from prep_iac.orchestrate.store import Store
from prep_iac.presets import load_election
from prep_iac.publish.signing import allowed_signers_line, generate_signing_key, verify_file

from .test_runner import make_runner

# Nothing listens on port 1 of loopback: every push fails at once.
CLOSED = {"host": "127.0.0.1", "port": 1}


@pytest.fixture
def box() -> Iterator[Mailbox]:
    with smtp_server() as server:
        yield server


def unreachable(registry: Registry) -> Registry:
    difusores = [
        Difusor.model_validate({**d.model_dump(), "nodes": [{**d.nodes[0].model_dump(), **CLOSED}]})
        for d in registry.difusores
    ]
    return registry.model_copy(update={"difusores": difusores})


def alerts(box: Mailbox) -> list[str]:
    return [
        str(m["Subject"]) for m in box.to(OPERATOR) if m["X-PREP-Message"] == "preparation-failed"
    ]


def test_missing_signing_key_alerts_the_operators_and_the_next_period_signs(
    store: Store, registry: Registry, one_cut: Path, box: Mailbox, tmp_path: Path
) -> None:
    cut = one_cut
    source = tmp_path / "source"
    source.mkdir()
    shutil.copytree(cut, source / cut.name)
    (source / f"{cut.name}{MARKER}").touch()
    (source / "roto.zip").write_bytes(b"not a zip")  # unreadable: skipped, reported, retried
    signing_key = tmp_path / "keys" / "signing"  # not there yet

    def key_arrives(period: Period) -> None:
        if period.index == 1:
            generate_signing_key(signing_key)

    election = load_election("coahuila-2018").model_copy(update={"transfer_budget_seconds": 300})
    client = generate_signing_key(tmp_path / "client" / "id_ed25519")
    runner, stop = make_runner(
        store, unreachable(registry), election, source, signing_key, tmp_path, client, 2,
        notify=notify_settings(box), on_period_start=[key_arrives],
    )  # fmt: skip
    outcome = runner.run(stop)
    assert outcome == "stopped"  # the loop served both periods: no crash
    starts = [p.start for p in store.periods()]
    events = [
        (e.kind, starts.index(e.period))
        for e in store.events(kinds=("signing-failed", "cut-invalid"))
        if e.period is not None
    ]
    # Once per period and cut, although the loop looked at SOURCE every 0.1 s.
    assert sorted(events) == [("cut-invalid", 0), ("cut-invalid", 1), ("signing-failed", 0)]
    [failed] = store.events(kinds=("signing-failed",))
    assert failed.detail["cut_id"] == cut.name and str(signing_key) in failed.detail["error"]
    broken = f"[PREP COAH 2018] No se pudo preparar el corte {source / 'roto.zip'}"
    assert sorted(alerts(box)) == [
        "[PREP COAH 2018] No se pudo firmar el corte 20180701_1800", broken, broken,
    ]  # fmt: skip
    [signing] = [m for m in box.to(OPERATOR) if "firmar" in str(m["Subject"])]
    assert "llave de firma" in Mailbox.text(signing)
    assert all(
        m["X-PREP-Message"] != "preparation-failed"
        for d in registry.difusores
        for m in box.to(d.contact.email)
    )
    # Nobody was tried in the first period; nobody is struck for it.
    assert {a.period for a in store.attempts()} == {starts[1]}
    assert {v.verdict for v in store.verdicts() if v.period == starts[0]} == {"no-cut"}
    assert {a.cut_id for a in store.attempts()} == {cut.name}
    # What the second period pushed is signed with the key that arrived.
    signers = tmp_path / "allowed_signers"
    signers.write_text(allowed_signers_line(signing_key.with_suffix(".pub")))
    verify_file(signers, tmp_path / "work" / "manifests" / cut.name / "manifest.json")
