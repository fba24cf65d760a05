"""Notifications over a real SMTP server (aiosmtpd) and a real HTTP webhook, on 127.0.0.1."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from prep_iac.orchestrate import outbox
from prep_iac.orchestrate.notify import (
    Notifier,
    NotifyError,
    NotifySettings,
    SmtpSettings,
    Webhook,
)
from prep_iac.orchestrate.store import MIGRATIONS, SCHEMA_VERSION, Store, ts
from prep_iac.orchestrate.strikes import Message

from .helpers import Night
from .servers import HookLog, Mailbox, self_signed, smtp_server, webhook_server

OPERATOR = "guardia.prep@example.org"
RELAY_PASSWORD = "s3creto"  # a throwaway for the test relay  # noqa: S105
CONTACT = "ana.perez@example.edu.mx"  # uadec's contact in the test registry
DOWN = {"uadec": False, "vanguardia": True}


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def hooks() -> Iterator[HookLog]:
    with webhook_server() as log:
        yield log


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def settings(mailbox: Mailbox, hooks: HookLog | None = None, **smtp: object) -> NotifySettings:
    return NotifySettings.model_validate(
        {
            "smtp": {"host": "127.0.0.1", "port": mailbox.port, "starttls": False,
                     "sender": "prep@iec.example.org", **smtp},
            "operators": [OPERATOR],
            "webhooks": [{"url": hooks.url, "headers": {"X-Token": "t0k"}}] if hooks else [],
        }
    )  # fmt: skip


def failed(night: Night, index: int, strikes: int) -> dict[str, object]:
    """The payload ``strikes.close_period`` queues for a failed period."""
    return {
        "period_start": night.start(index).isoformat(), "cut_id": night.cut(index).cut_id,
        "strikes": strikes, "error_class": "timeout", "error": "no confirmation",
    }  # fmt: skip


def notifier(
    night: Night, config: NotifySettings, clock: Clock, store: Store | None = None
) -> Notifier:
    return Notifier(config, store or night.store, night.registry, night.election, clock)


def test_failed_period_mails_the_contact_and_operators_in_spanish(
    night: Night, mailbox: Mailbox
) -> None:
    [action] = [a for a in night.period(0, DOWN) if a.kind == "notify"]
    clock = Clock(night.start(1))
    notifier(night, settings(mailbox), clock)(action)
    assert sorted(r for rcpt, _ in mailbox.messages for r in rcpt) == sorted([CONTACT, OPERATOR])
    [mail] = mailbox.to(CONTACT)
    assert mail["Subject"] == (
        "[PREP COAH 2018] Falla en la actualización de Universidad Autónoma de Coahuila (1 de 3)"
    )
    assert mail["Content-Language"] == "es-MX"
    body = Mailbox.text(mail)
    assert "se procederá a comunicarse con el Difusor" in body
    assert "corte 20180701_1800" in body
    assert "inició a las 18:00 (hora local)" in body
    assert "Periodos de actualización consecutivos con falla: 1 de 3." in body
    assert "unreachable" in body


def test_disabled_difusor_notice_reaches_everyone(
    night: Night, mailbox: Mailbox, hooks: HookLog
) -> None:
    for index in range(3):
        actions = night.period(index, DOWN)
    clock = Clock(night.start(3))
    outcomes = outbox.perform_pending(
        night.store, {"notify": notifier(night, settings(mailbox, hooks), clock)}, clock
    )
    assert all(o.ok for o in outcomes)
    [disabled] = [m for m in mailbox.to(CONTACT) if "interrumpió" in m["Subject"]]
    assert disabled["Subject"] == (
        "[PREP COAH 2018] Se interrumpió la transmisión a Universidad Autónoma de Coahuila"
    )
    body = Mailbox.text(disabled)
    assert "se interrumpió la transmisión de la información de los resultados preliminares" in body
    assert "https://www.example.edu.mx/prep" in body
    # One mail per failed period (1, 2 and 3 of 3: each is news), then the disabling.
    assert [m["X-PREP-Message"] for m in mailbox.to(OPERATOR)] == ["period-failed"] * 3 + [
        "disabled"
    ]
    assert [m["X-PREP-Period"] for m in mailbox.to(CONTACT)][:3] == [
        ts(night.start(i)) for i in range(3)
    ]
    messages = [b["message"] for b in hooks.bodies]
    assert messages == ["period-failed"] * 3 + ["disabled"]
    hook = hooks.bodies[3]
    assert hook["difusor"] == "uadec"
    assert hook["headers"]["X-Token"] == "t0k"
    assert hook["detail"]["strikes"] == 3
    assert [a for a in actions if a.kind == "notify"] != []
    assert [e.kind for e in night.store.events(kinds=("notified",))].count("notified") == 4
    # The outbox repeating the disabling after a crash mails nobody again.
    disabled_action = [a for a in actions if a.payload.get("message") == "disabled"]
    assert [d.outcome for d in notifier(night, settings(mailbox, hooks), clock).send(
        "uadec", Message.DISABLED, disabled_action[0].payload, disabled_action[0].key
    )] == ["suppressed"] * 3  # fmt: skip


def mailed_periods(mailbox: Mailbox, address: str) -> list[tuple[str, str]]:
    """(period, subject's strike count) of each failed-period mail ``address`` got."""
    return [
        (str(m["X-PREP-Period"]), str(m["Subject"]).rsplit("(", 1)[-1].rstrip(")"))
        for m in mailbox.to(address)
        if m["X-PREP-Message"] == "period-failed"
    ]


def outage_night(night: Night, mailbox: Mailbox) -> Notifier:
    """uadec fails twice, recovers, fails twice again; the outbox runs after each period."""
    clock = Clock(night.start(0))
    handler = notifier(night, settings(mailbox), clock)
    for index, up in enumerate([False, False, True, False, False]):
        night.period(index, {"uadec": up, "vanguardia": True})
        clock.now = night.start(index + 1)
        assert all(o.ok for o in outbox.perform_pending(night.store, {"notify": handler}, clock))
    return handler


def test_every_failed_period_of_a_second_outage_is_mailed(night: Night, mailbox: Mailbox) -> None:
    outage_night(night, mailbox)
    expected = [(ts(night.start(i)), f"{n} de 3") for i, n in [(0, 1), (1, 2), (3, 1), (4, 2)]]
    assert mailed_periods(mailbox, CONTACT) == expected
    assert mailed_periods(mailbox, OPERATOR) == expected
    assert mailbox.to("luis@example.com.mx") == []  # vanguardia passed every period


def test_a_crash_replay_mails_nothing(night: Night, mailbox: Mailbox) -> None:
    handler = outage_night(night, mailbox)
    sent = len(mailbox.messages)
    # A crash after mailing period 5's notice (its third strike: the disabling is
    # queued too) but before the outbox recorded it done.
    night.period(5, {"uadec": False, "vanguardia": True})
    [action] = [a for a in night.store.pending_actions()
                if a.payload.get("message") == "period-failed"]  # fmt: skip
    handler.clock = Clock(night.start(6))
    handler(action)
    assert len(mailbox.messages) == sent + 2
    night.store.close()
    with Store(night.store.path) as reopened:
        later = Clock(night.start(9))  # hours later, in election time
        restarted = notifier(night, settings(mailbox), later, reopened)
        outcomes = outbox.perform_pending(reopened, {"notify": restarted}, later)
        assert [o.action.payload["message"] for o in outcomes if o.ok] == [
            "period-failed", "disabled",
        ]  # fmt: skip
        # And every notice of the night sent again, as a replay of the whole outbox.
        for event in reopened.events(kinds=("notified",)):
            deliveries = restarted.send(
                event.difusor, Message(event.detail["message"]), event.detail, event.detail["key"]
            )
            assert {d.outcome for d in deliveries} == {"suppressed"}
    # Only the disabling was news after the restart.
    assert len(mailbox.messages) == sent + 4
    assert [m["X-PREP-Message"] for m in mailbox.to(CONTACT)][-2:] == ["period-failed", "disabled"]


def test_failed_webhook_is_retried_without_mailing_twice(
    night: Night, mailbox: Mailbox, hooks: HookLog
) -> None:
    night.period(0, DOWN)
    clock = Clock(night.start(1))
    handlers: dict[str, outbox.Handler] = {
        "notify": notifier(night, settings(mailbox, hooks), clock)
    }
    hooks.status = 503
    [outcome] = outbox.perform_pending(night.store, handlers, clock)
    assert "503" in outcome.error
    assert [a.kind for a in night.store.pending_actions()] == ["notify", "render-list"]
    assert len(mailbox.messages) == 2
    hooks.status = 200
    clock.now += timedelta(minutes=1)
    [retried] = outbox.perform_pending(night.store, handlers, clock)
    assert retried.ok
    assert [a.kind for a in night.store.pending_actions()] == ["render-list"]
    assert len(mailbox.messages) == 2
    assert [b["message"] for b in hooks.bodies] == ["period-failed"]
    assert [e.kind for e in night.store.events(kinds=("action-failed", "notified"))] == [
        "action-failed", "notified",
    ]  # fmt: skip


def test_unreachable_relay_fails_the_action(night: Night, mailbox: Mailbox) -> None:
    config = settings(mailbox).model_copy(
        update={
            "smtp": SmtpSettings(
                host="127.0.0.1", port=1, starttls=False, sender="p@iec.example.org"
            )
        }
    )
    with pytest.raises(NotifyError, match=r"Connection refused|Errno"):
        notifier(night, config, Clock(night.start(1))).send(
            "uadec", Message.REINSTATED, {"cut_id": "c"}, "k"
        )
    assert night.store.notified(CONTACT, "uadec", "reinstated", "k") is None


def test_mail_goes_over_starttls_with_login(night: Night, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with smtp_server(tls=(cert, key), user="prep", password=RELAY_PASSWORD) as box:
        config = settings(
            box, starttls=True, username="prep", password=RELAY_PASSWORD, ca_file=str(cert)
        )
        clock = Clock(night.start(1))
        notifier(night, config, clock).send(
            "vanguardia", Message.REINSTATED, {"cut_id": "20180701_1810"}, "event-1"
        )
        assert box.logins == ["prep", "prep"]
        [mail] = box.to("luis@example.com.mx")
        assert "Se reanudó la transmisión" in mail["Subject"]
        assert "el corte 20180701_1810 quedó confirmado en su servidor" in Mailbox.text(mail)


def test_webhook_setting_rejects_non_http_urls() -> None:
    with pytest.raises(ValueError, match="URL"):
        Webhook.model_validate({"url": "file:///etc/passwd"})


def test_a_version_1_store_upgrades_to_per_period_deduplication(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        old.execute(statement)
    old.execute(
        "INSERT INTO notifications VALUES ('uadec', 'period-failed:1', ?, ?)",
        (CONTACT, "2018-07-02T00:00:00+00:00"),
    )
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        at = datetime.fromisoformat("2018-07-02T00:10:00+00:00")
        assert store.notified(CONTACT, "uadec", "period-failed", "p1") is None
        with store.transaction():
            store.mark_notified(CONTACT, "uadec", "period-failed", "p1", at)
            store.mark_notified(CONTACT, "uadec", "period-failed", "p1", at + timedelta(hours=1))
        assert store.notified(CONTACT, "uadec", "period-failed", "p1") == at


def test_actions_not_started_once_the_caller_says_stop_stay_pending_in_order(
    night: Night, mailbox: Mailbox, hooks: HookLog
) -> None:
    night.period(0, DOWN)  # a notice for uadec's contact, then the IEC's list
    clock = Clock(night.start(1))
    handlers: dict[str, outbox.Handler] = {
        "notify": notifier(night, settings(mailbox, hooks), clock),
        "render-list": lambda action: None,
    }
    asked: list[int] = []

    def keep_going() -> bool:  # time for one action only
        asked.append(len(asked))
        return len(asked) == 1

    [done] = outbox.perform_pending(night.store, handlers, clock, keep_going=keep_going)
    assert (done.action.kind, done.ok) == ("notify", True)
    assert [a.kind for a in night.store.pending_actions()] == ["render-list"]
    assert len(asked) == 2
    [later] = outbox.perform_pending(night.store, handlers, clock)
    assert later.action.kind == "render-list" and later.ok
