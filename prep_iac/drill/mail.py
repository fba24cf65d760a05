"""The drill's e-mail: a real SMTP server on loopback, and what its inboxes must hold.

``run_drill`` starts ``mailbox.smtp_server`` and points the orchestrator's
notifications at it (``notify_settings``). At the end ``mail_checks`` reads
what arrived, by the ``X-PREP-*`` headers the notifier sets:

- each failing difusor's technical contact got one Spanish mail per failed
  period, for exactly its failed periods (none twice);
- each disabled difusor's contact got the disablement mail, once;
- the IEC's operators got every notice the contacts got (their own alerts about
  no difusor, such as a cut that could not be signed, come on top);
- healthy difusores' contacts got nothing, and nobody got a mail about a
  period it passed (the default scenario fails every difusor at some point);
- no flood: replaying every notice already sent, as the outbox does when the
  orchestrator died between mailing and recording it, sends nothing more (a
  notice is held back only as an exact repeat: same recipient, difusor, message
  and period or decision).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage

from prep_iac.drill.mailbox import Mailbox
from prep_iac.models.difusor import Registry
from prep_iac.models.election import Election
from prep_iac.orchestrate.notify import Notifier, NotifySettings, SmtpSettings
from prep_iac.orchestrate.store import Store
from prep_iac.orchestrate.strikes import Message

OPERATOR = "guardia.prep@iec.simulacro.example.org"
SENDER = "prep@iec.simulacro.example.org"
FAILED_TEXT = "se procederá a comunicarse con el Difusor"
DISABLED_TEXT = "se interrumpió la transmisión"

MailCheck = tuple[str, bool, str]
# difusor (None: an operators' alert), message, period index (failed periods)
Notice = tuple[str | None, str, int | None]


def notify_settings(box: Mailbox) -> NotifySettings:
    """Every difusor's contact and one IEC operator, by plain SMTP to ``box``."""
    smtp = SmtpSettings(host="127.0.0.1", port=box.port, starttls=False, sender=SENDER)
    return NotifySettings(smtp=smtp, operators=[OPERATOR])


def notices(box: Mailbox, address: str, periods: list[datetime]) -> list[Notice]:
    """What ``address`` received, as (difusor, message, period index)."""
    return [_notice(m, periods) for m in box.to(address)]


def _notice(mail: EmailMessage, periods: list[datetime]) -> Notice:
    """-1 for a period the drill did not close (a wrong mail the checks then show)."""
    period = mail["X-PREP-Period"]
    when = None if period is None else datetime.fromisoformat(period)
    index = None if when is None else periods.index(when) if when in periods else -1
    difusor = mail["X-PREP-Difusor"]
    return None if difusor is None else str(difusor), str(mail["X-PREP-Message"]), index


def mail_counts(box: Mailbox, registry: Registry) -> dict[str, object]:
    """Messages per difusor contact and kind, and to the operators (the drill's summary)."""
    contacts = {
        d.id: dict(Counter(str(m["X-PREP-Message"]) for m in box.to(d.contact.email)))
        for d in registry.difusores
    }
    return {"contacts": contacts, "operators": len(box.to(OPERATOR)), "total": len(box.messages)}


def mail_checks(
    box: Mailbox, registry: Registry, verdicts: dict[str, list[str]], periods: list[datetime],
    disabled: set[str], store: Store, election: Election, settings: NotifySettings,
) -> list[MailCheck]:  # fmt: skip
    """The checks listed in the module docstring; ``periods`` are the drill's period starts."""
    checks: list[MailCheck] = []
    every: list[Notice] = []
    quiet: list[str] = []
    for difusor in registry.difusores:
        contact = difusor.contact.email
        failed = [i for i, v in enumerate(verdicts.get(difusor.id, [])) if v == "failed"]
        got = notices(box, contact, periods)
        every += got
        mails = box.to(contact)
        if failed:
            wrong = [m for m in mails if m["X-PREP-Message"] == Message.PERIOD_FAILED.value
                     and FAILED_TEXT not in Mailbox.text(m)]  # fmt: skip
            mailed = sorted(
                i for d, kind, i in got if kind == Message.PERIOD_FAILED.value and i is not None
            )
            checks.append((
                f"mail: {difusor.id}'s contact told of each failed period",
                mailed == failed and not wrong,
                f"failed periods {failed}; mailed {mailed}"
                + (f"; {len(wrong)} without the Spanish clause-III text" if wrong else ""),
            ))  # fmt: skip
        if difusor.id in disabled:
            told = [m for m in mails if m["X-PREP-Message"] == Message.DISABLED.value]
            checks.append((
                f"mail: {difusor.id}'s contact told of the disabling",
                len(told) == 1 and DISABLED_TEXT in Mailbox.text(told[0]).lower(),
                f"{len(told)} disablement mail(s)",
            ))  # fmt: skip
        # Healthy means no failed period: nothing at all; otherwise nothing about a passed one.
        healthy = not failed and difusor.id not in disabled
        quiet += [f"{difusor.id}: {len(mails)} mail(s)"] if healthy and mails else []
        quiet += [
            f"{difusor.id} period {i}" for _, _, i in got if i is not None and i not in failed
        ]
    checks.append((
        "mail: none to healthy difusores, none about a passed period",
        not quiet,
        f"wrongly mailed: {quiet or 'none'}",
    ))  # fmt: skip
    operators = [n for n in notices(box, OPERATOR, periods) if n[0] is not None]
    checks.append((
        "mail: IEC operators got every notice",
        Counter(operators) == Counter(every) and bool(operators),
        f"{len(operators)} to the operators, {len(every)} to contacts",
    ))  # fmt: skip
    twice = [n for c in (Counter(every), Counter(operators)) for n, k in c.items() if k > 1]
    before = len(box.messages)
    replayed = replay(store, registry, election, settings)
    checks.append((
        "mail: no flood (deduplicated)",
        not twice and replayed == 0 and len(box.messages) == before,
        f"repeated: {twice or 'none'}; replaying {len(store.events(kinds=('notified',)))}"
        f" sent notices a minute later (a crash before recording them) mailed {replayed}",
    ))  # fmt: skip
    return checks


def replay(store: Store, registry: Registry, election: Election, settings: NotifySettings) -> int:
    """Send every recorded notice again a minute after it went; return how many were mailed."""
    sent = 0
    for event in store.events(kinds=("notified",)):
        notifier = Notifier(
            settings, store, registry, election, _at(event.at + timedelta(minutes=1))
        )
        message = Message(event.detail["message"])
        deliveries = notifier.send(event.difusor, message, event.detail, event.detail["key"])
        sent += sum(d.outcome == "sent" for d in deliveries)
    return sent


def _at(when: datetime) -> Callable[[], datetime]:
    return lambda: when
