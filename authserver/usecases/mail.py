"""E-mail through ``[mail]``: the standard library's ``smtplib`` and ``email``.

Sending is background work only (the outbox sender runs it in a worker thread of
its own), so a blocking client costs no request anything; ``smtplib`` speaks plain
SMTP, STARTTLS and implicit TLS, with certificate checks through ``ssl``'s
default context, and adds no dependency.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import urlsplit

from authserver.config import MAIL_SCHEMES, Settings
from authserver.store.outbox import OutboxRecord

TIMEOUT = 10.0  # seconds per SMTP command


def compose(settings: Settings, message: OutboxRecord) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = settings.mail_from
    mail["To"] = message.target
    mail["Subject"] = message.subject or ""
    mail["Date"] = format_datetime(message.created_at)
    domain = settings.mail_from.rpartition("@")[2]
    # The outbox id: a retry after a lost answer is recognisable as the same message.
    mail["Message-ID"] = make_msgid(idstring=message.id, domain=domain)
    mail.set_content(message.body)
    return mail


def send(settings: Settings, messages: Sequence[OutboxRecord]) -> dict[str, str | None]:
    """Send ``messages`` over one SMTP connection: message id → None (sent) or the reason
    it was not (a refusal, or a connection that failed)."""
    outcome: dict[str, str | None] = {}
    parts = urlsplit(settings.mail_smtp_url)
    host, port = parts.hostname or "", parts.port or MAIL_SCHEMES[parts.scheme]
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if parts.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=TIMEOUT)
        with smtp:
            if parts.scheme == "smtp+starttls":
                smtp.starttls(context=context)
            if settings.mail_username:
                smtp.login(settings.mail_username, settings.mail_password)
            for message in messages:
                try:
                    smtp.send_message(compose(settings, message))
                    outcome[message.id] = None
                except smtplib.SMTPRecipientsRefused as exc:
                    code, text = next(iter(exc.recipients.values()))
                    outcome[message.id] = _reason(code, text)
                except smtplib.SMTPResponseException as exc:
                    outcome[message.id] = _reason(exc.smtp_code, exc.smtp_error)
                    if exc.smtp_code == 421:  # the server is closing the connection
                        break
    except (OSError, smtplib.SMTPException) as exc:
        reason: str = f"cannot send through {host}:{port}: {type(exc).__name__}"
        if isinstance(exc, smtplib.SMTPResponseException):
            reason = _reason(exc.smtp_code, exc.smtp_error)
        for message in messages:
            outcome.setdefault(message.id, reason)
    for message in messages:
        outcome.setdefault(message.id, "not sent: the connection ended")
    return outcome


def _reason(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"SMTP {code} {' '.join(text.split())}"[:300]
