"""A real SMTP server on loopback that keeps what it accepts (aiosmtpd).

The drill points the orchestrator's e-mail notifications at it and checks
what arrived; the tests use it the same way, with STARTTLS and AUTH when
asked. Never a relay: it only stores messages in memory.

**Example:**

```python
with smtp_server() as box:
    settings = SmtpSettings(host="127.0.0.1", port=box.port, starttls=False, sender=...)
    ...
    box.to("contacto@difusor.example")
```
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server accepted: one parsed message per delivery."""

    port: int
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    @staticmethod
    def text(message: EmailMessage) -> str:
        """The body with whitespace collapsed, so assertions ignore line wrapping."""
        return " ".join(message.get_content().split())

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.messages if address in rcpt]


@contextmanager
def smtp_server(
    tls: tuple[Path, Path] | None = None, user: str = "", password: str = ""
) -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1; with ``tls`` (certificate, key), STARTTLS and AUTH are required."""
    box = Mailbox(free_port())
    params: dict[str, Any] = {}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)

        def authenticate(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                user.encode(),
                password.encode(),
            )
            if ok:
                box.logins.append(user)
            return AuthResult(success=ok)

        params = {
            "tls_context": context,
            "require_starttls": True,
            "authenticator": authenticate,
            "auth_require_tls": True,
        }
    controller = Controller(box, hostname="127.0.0.1", port=box.port, **params)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
