"""Sending e-mail: a small interface, an SMTP implementation and a log-only fallback.

Configuration (Flask config, else the environment):

- ``SPIE_SMTP_HOST`` — SMTP relay; without it, :class:`LogMailer` only logs that a mail was
  sent (to a recipient *reference*, never the address);
- ``SPIE_SMTP_PORT`` (default 25), ``SPIE_SMTP_STARTTLS`` (default false),
  ``SPIE_SMTP_USER`` / ``SPIE_SMTP_PASSWORD`` (optional), ``SPIE_SMTP_TIMEOUT`` (seconds,
  default 30);
- ``SPIE_MAIL_FROM`` — sender address (default ``ne-pas-repondre@spie.invalid``).

Logs never carry an address, a name or a NIR: only the recipient reference (``person:42``).
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from flask import current_app, has_app_context

log = logging.getLogger(__name__)

DEFAULT_FROM = "ne-pas-repondre@spie.invalid"


@dataclass(frozen=True)
class OutgoingMail:
    """One message. ``recipient_ref`` identifies the recipient in logs (``person:42``)."""

    recipient_ref: str
    to_address: str
    subject: str
    text: str
    html: str | None = None


class Mailer(Protocol):
    def send(self, mail: OutgoingMail) -> None:
        """Send ``mail`` or raise (the job retries with backoff)."""


def _setting(name: str, default: Any = None) -> Any:
    if has_app_context():
        value = current_app.config.get(name)
        if value is not None:
            return value
    return os.environ.get(name, default)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def build_message(mail: OutgoingMail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1] or "spie.invalid")
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    return message


class SmtpMailer:
    """Sends through an SMTP relay with :mod:`smtplib` (STARTTLS and login if configured)."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        sender: str = DEFAULT_FROM,
        *,
        starttls: bool = False,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.user = user
        self.password = password
        self.timeout = timeout

    def send(self, mail: OutgoingMail) -> None:
        message = build_message(mail, self.sender)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user and self.password:
                smtp.login(self.user, self.password)
            smtp.send_message(message)
        log.info("mail to %s sent", mail.recipient_ref)


class LogMailer:
    """No SMTP relay configured (development): log the recipient reference only."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, mail: OutgoingMail) -> None:
        self.sent.append(mail.recipient_ref)
        log.info("mail to %s sent", mail.recipient_ref)


def get_mailer() -> Mailer:
    """The mailer the configuration asks for (read at each call: tests may change it)."""
    host = _setting("SPIE_SMTP_HOST")
    if not host:
        return LogMailer()
    return SmtpMailer(
        str(host),
        int(_setting("SPIE_SMTP_PORT", 25)),
        str(_setting("SPIE_MAIL_FROM", DEFAULT_FROM)),
        starttls=_as_bool(_setting("SPIE_SMTP_STARTTLS", False)),
        user=_setting("SPIE_SMTP_USER"),
        password=_setting("SPIE_SMTP_PASSWORD"),
        timeout=float(_setting("SPIE_SMTP_TIMEOUT", 30)),
    )
