"""Tell a difusor's technical contact and the IEC's operators what clause III decided.

E-mail goes through smtplib (host, port, STARTTLS, credentials from
``SmtpSettings``); webhooks get a JSON POST. Messages are Spanish Jinja2
templates in ``templates/notify/``: a failed period ("se procederá a
comunicarse con el Difusor"), a disabled difusor, a reinstated one, and the
operators' own alerts about no difusor (a cut the IEC could not prepare or sign).

Deduplication holds back true repeats only: the same message to the same
recipient about the same difusor and the same period (for a failed period) or
the same decision (the outbox action's key, for the others). Every failed
period is news, also when a difusor fails, recovers and fails again. The record
lives in the store, so neither a restart nor an outbox action repeated after a
crash mails anyone twice, and no time window is involved (a drill's compressed
clock changes nothing). A recipient that fails makes the whole action fail, so
the outbox retries it; recipients already served are then skipped.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, SecretStr

from prep_iac.models.difusor import Difusor, Registry
from prep_iac.models.election import Election
from prep_iac.orchestrate.store import Action, Store, parse_ts
from prep_iac.orchestrate.strikes import Message

TEMPLATES = Environment(
    loader=PackageLoader("prep_iac.orchestrate", "templates/notify"),
    undefined=StrictUndefined,  # a missing value must fail loudly, not mail a blank
    keep_trailing_newline=True,
    autoescape=False,  # plain-text mail  # noqa: S701
)


class SmtpSettings(BaseModel):
    """How to reach the IEC's mail relay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password: SecretStr | None = None
    sender: EmailStr
    ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the relay (default: the system's)."
    )
    timeout_s: float = Field(default=20.0, gt=0)


class Webhook(BaseModel):
    """An operators' channel that accepts a JSON POST (chat bridge, incident tool)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: HttpUrl
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0)


class NotifySettings(BaseModel):
    """Who hears about clause-III decisions, and how often at most."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    smtp: SmtpSettings | None = None
    operators: list[EmailStr] = Field(default_factory=list, description="IEC operators' e-mail.")
    webhooks: list[Webhook] = Field(default_factory=list)
    mail_contacts: bool = Field(default=True, description="Also mail each difusor's contact.")


@dataclass(frozen=True)
class Delivery:
    recipient: str
    outcome: str  # "sent", "suppressed" (dedup) or "failed"
    error: str = ""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


class NotifyError(RuntimeError):
    """Some recipients could not be reached; the action is retried."""


class Notifier:
    """The outbox handler for ``notify`` actions.

    + settings: SMTP, operators, webhooks
    + store: where deduplication is recorded
    + registry, election: names, contacts and time zone for the messages
    + clock: the current time (aware)
    """

    def __init__(
        self,
        settings: NotifySettings,
        store: Store,
        registry: Registry,
        election: Election,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.election = election
        self.clock = clock

    def __call__(self, action: Action) -> None:
        message = Message(action.payload["message"])
        self.send(action.difusor, message, action.payload, action.key)

    def render(
        self, difusor: Difusor | None, message: Message, payload: dict[str, Any]
    ) -> Rendered:
        tz = self.election.tz
        context = {
            "election": self.election,
            "difusor": difusor,
            "nodes": 0 if difusor is None else len(difusor.nodes),
            "at_local": f"{self.clock().astimezone(tz):%H:%M del %d/%m/%Y}",
            "cut_id": "",
            "strikes": 0,
            "limit": self.election.strike_limit,
            "error_class": "",
            "error": "",
            "reason": "",
            "operator": "",
            "what": "",
            "path": "",
            **payload,
        }
        if "period_start" in payload:
            context["period_local"] = f"{parse_ts(payload['period_start']).astimezone(tz):%H:%M}"
        subject = TEMPLATES.get_template(f"{message.value}.subject.j2").render(context)
        text = TEMPLATES.get_template(f"{message.value}.txt.j2").render(context)
        return Rendered(" ".join(subject.split()), text)

    def send(
        self, difusor_id: str | None, message: Message, payload: dict[str, Any], key: str
    ) -> list[Delivery]:
        """Send ``message`` to everyone it concerns; raise if anyone failed.

        + difusor_id: the difusor it is about (its contact and the operators are
          told), or None for an operators' alert
        + key: the outbox action's key; with the failed period's start, it tells a
          repeat (held back) from news
        """
        difusor = None if difusor_id is None else self.registry.get(difusor_id)
        rendered = self.render(difusor, message, payload)
        period = str(payload.get("period_start", ""))
        about = period or key
        recipients: list[tuple[str, Callable[[], None]]] = []
        if self.settings.smtp is not None:
            contact = difusor is not None and self.settings.mail_contacts
            emails = [difusor.contact.email] if difusor is not None and contact else []
            emails += [e for e in self.settings.operators if e not in emails]
            recipients += [
                (email, _bind(self._mail, email, difusor, message, rendered, period))
                for email in emails
            ]
        for hook in self.settings.webhooks:
            body = {
                "message": message.value,
                "difusor": None if difusor is None else difusor.id,
                "legal_name": None if difusor is None else difusor.legal_name,
                "election": self.election.id,
                "subject": rendered.subject,
                "text": rendered.text,
                "detail": payload,
            }
            recipients.append((f"webhook:{hook.url}", _bind(_post, hook, body)))
        deliveries = [
            self._deliver(difusor_id or "", message, about, r, send) for r, send in recipients
        ]
        failed = [d for d in deliveries if d.outcome == "failed"]
        if failed:
            raise NotifyError("; ".join(f"{d.recipient}: {d.error}" for d in failed))
        return deliveries

    def _deliver(
        self, difusor: str, message: Message, about: str, recipient: str,
        send: Callable[[], None],
    ) -> Delivery:  # fmt: skip
        """Send unless ``recipient`` already got ``message`` about ``difusor`` and ``about``."""
        if self.store.notified(recipient, difusor, message.value, about) is not None:
            return Delivery(recipient, "suppressed")
        try:
            send()
        except (OSError, smtplib.SMTPException) as exc:
            return Delivery(recipient, "failed", f"{type(exc).__name__}: {exc}")
        with self.store.transaction():
            self.store.mark_notified(recipient, difusor, message.value, about, self.clock())
        return Delivery(recipient, "sent")

    def _mail(
        self, to: str, difusor: Difusor | None, message: Message, rendered: Rendered, period: str
    ) -> None:
        smtp = self.settings.smtp
        assert smtp is not None
        mail = EmailMessage()
        mail["From"] = smtp.sender
        mail["To"] = to
        mail["Subject"] = rendered.subject
        mail["Date"] = format_datetime(self.clock())
        mail["Message-ID"] = make_msgid(domain=smtp.sender.split("@")[-1])
        if difusor is not None:
            mail["X-PREP-Difusor"] = difusor.id
        mail["X-PREP-Message"] = message.value
        if period:  # the failed period's start (UTC), for whoever files the mail
            mail["X-PREP-Period"] = period
        mail.set_content(rendered.text)
        mail["Content-Language"] = "es-MX"  # after set_content, which clears Content-*
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
            if smtp.starttls:
                # smtplib's default context does not verify the server; ours does.
                client.starttls(context=ssl.create_default_context(cafile=smtp.ca_file))
            if smtp.username:
                password = smtp.password.get_secret_value() if smtp.password else ""
                client.login(smtp.username, password)
            client.send_message(mail)


def _bind(func: Callable[..., None], *args: Any) -> Callable[[], None]:
    return lambda: func(*args)


def _post(hook: Webhook, body: dict[str, Any]) -> None:
    request = urllib.request.Request(  # noqa: S310 (the scheme is http(s), validated by HttpUrl)
        str(hook.url),
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json; charset=utf-8", **hook.headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=hook.timeout_s) as response:  # noqa: S310
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered HTTP {response.status}")
