"""Notifications over a real SMTP server (aiosmtpd) and a real HTTP webhook, on 127.0.0.1."""

from __future__ import annotations

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
from prep_iac.orchestrate.store import Store, ts
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
            "dedup_minutes": 30,
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
        "uadec", Message.DISABLED, disabled_action[0].payload
    )] == ["suppressed"] * 3  # fmt: skip


def test_dedup_survives_a_restart(night: Night, mailbox: Mailbox, tmp_path: Path) -> None:
    config = settings(mailbox)
    clock = Clock(night.start(1))
    notifier(night, config, clock).send("uadec", Message.PERIOD_FAILED, failed(night, 0, 1))
    assert len(mailbox.messages) == 2
    night.store.close()
    with Store(night.store.path) as reopened:
        clock.now += timedelta(minutes=29)
        # failed once more after a recovery: the same news (strike 1), held back
        deliveries = notifier(night, config, clock, reopened).send(
            "uadec", Message.PERIOD_FAILED, failed(night, 2, 1)
        )
        assert {d.outcome for d in deliveries} == {"suppressed"}
        assert len(mailbox.messages) == 2
        # a second consecutive failed period is news: sent within the window
        notifier(night, config, clock, reopened).send(
            "uadec", Message.PERIOD_FAILED, failed(night, 3, 2)
        )
        assert len(mailbox.messages) == 4
        # another kind of message is not held back by the first
        notifier(night, config, clock, reopened).send("uadec", Message.DISABLED, {"reason": "r"})
        assert len(mailbox.messages) == 6
        clock.now += timedelta(minutes=2)
        notifier(night, config, clock, reopened).send(
            "uadec", Message.PERIOD_FAILED, failed(night, 2, 1)
        )
        assert len(mailbox.messages) == 8


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
            "uadec", Message.REINSTATED, {"cut_id": "c"}
        )
    assert night.store.last_notified("uadec", "reinstated", CONTACT) is None


def test_mail_goes_over_starttls_with_login(night: Night, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with smtp_server(tls=(cert, key), user="prep", password=RELAY_PASSWORD) as box:
        config = settings(
            box, starttls=True, username="prep", password=RELAY_PASSWORD, ca_file=str(cert)
        )
        clock = Clock(night.start(1))
        notifier(night, config, clock).send(
            "vanguardia", Message.REINSTATED, {"cut_id": "20180701_1810"}
        )
        assert box.logins == ["prep", "prep"]
        [mail] = box.to("luis@example.com.mx")
        assert "Se reanudó la transmisión" in mail["Subject"]
        assert "el corte 20180701_1810 quedó confirmado en su servidor" in Mailbox.text(mail)


def test_webhook_setting_rejects_non_http_urls() -> None:
    with pytest.raises(ValueError, match="URL"):
        Webhook.model_validate({"url": "file:///etc/passwd"})
