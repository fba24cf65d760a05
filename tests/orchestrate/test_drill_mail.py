"""The drill's mail checks over a real SMTP server: they pass on a right night, fail on a flood."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from prep_iac.drill.mail import OPERATOR, mail_checks, mail_counts, notify_settings
from prep_iac.drill.mailbox import Mailbox, smtp_server
from prep_iac.orchestrate import outbox
from prep_iac.orchestrate.notify import Notifier
from prep_iac.orchestrate.store import Store, ts
from prep_iac.orchestrate.strikes import Message

from .helpers import Night


@pytest.fixture
def box() -> Iterator[Mailbox]:
    with smtp_server() as server:
        yield server


def night_of_mail(night: Night, box: Mailbox) -> dict[str, list[str]]:
    """uadec fails three periods and is disabled; vanguardia is fine; the outbox mails."""
    notifier = Notifier(notify_settings(box), night.store, night.registry, night.election,
                        lambda: night.start(4))  # fmt: skip
    for index in range(4):
        night.period(index, {"uadec": False, "vanguardia": True})
        clock = night.start(index + 1)
        notifier.clock = at(clock)
        outbox.perform_pending(night.store, {"notify": notifier}, notifier.clock)
    return {d: [v.verdict for v in night.store.verdicts(d)] for d in ("uadec", "vanguardia")}


def at(when: datetime) -> Callable[[], datetime]:
    return lambda: when


def test_mail_checks_pass_on_one_mail_per_failed_period(night: Night, box: Mailbox) -> None:
    verdicts = night_of_mail(night, box)
    assert verdicts["uadec"] == ["failed", "failed", "failed", "disabled"]
    starts = [night.start(i) for i in range(4)]
    settings = notify_settings(box)
    checks = mail_checks(box, night.registry, verdicts, starts, {"uadec"}, night.store,
                         night.election, settings)  # fmt: skip
    assert [c for c in checks if not c[1]] == []
    names = [c[0] for c in checks]
    assert "mail: none to healthy difusores, none about a passed period" in names
    assert "mail: no flood (deduplicated)" in names
    counts = mail_counts(box, night.registry)
    assert counts["contacts"] == {"uadec": {"period-failed": 3, "disabled": 1}, "vanguardia": {}}
    assert counts["operators"] == 4


def test_mail_checks_catch_a_repeated_notice(night: Night, box: Mailbox, tmp_path: Path) -> None:
    verdicts = night_of_mail(night, box)
    # A mail sent outside the notifier (no record of it in the store): the check must see it.
    with Store(tmp_path / "elsewhere.sqlite3") as elsewhere:
        Notifier(notify_settings(box), elsewhere, night.registry, night.election,
                 lambda: night.start(5)).send(
            "uadec", Message.DISABLED, {"reason": "otra vez"}, "notify:disabled:uadec:again"
        )  # fmt: skip
    # And one about a period vanguardia passed.
    payload = {"period_start": ts(night.start(1)), "cut_id": night.cut(1).cut_id, "strikes": 1}
    Notifier(notify_settings(box), night.store, night.registry, night.election,
             at(night.start(5))).send("vanguardia", Message.PERIOD_FAILED, payload,
                                      "notify:period-failed:vanguardia:1")  # fmt: skip
    found = mail_checks(
        box, night.registry, verdicts, [night.start(i) for i in range(4)], {"uadec"},
        night.store, night.election, notify_settings(box),
    )  # fmt: skip
    checks = {name: ok for name, ok, _ in found}
    assert not checks["mail: uadec's contact told of the disabling"]
    assert not checks["mail: no flood (deduplicated)"]
    assert not checks["mail: none to healthy difusores, none about a passed period"]
    assert len(box.to(OPERATOR)) == 6
