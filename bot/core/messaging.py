"""Email and SMS to customers: a real SMTP relay when SMTP_URL is set, otherwise (and for
SMS in development) one file per message in var/outbox/, where a person trying Comptoir
locally reads their code."""
from __future__ import annotations

import logging
import secrets
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot.core.models import QueuedMail, utcnow
from bot.core.settings import is_loopback

logger = logging.getLogger("comptoir.messaging")


class Messenger:
    def __init__(self, outbox_dir: Path, smtp_url: Optional[str] = None,
                 mail_from: str = "Comptoir <ne-pas-repondre@comptoir.example>") -> None:
        self.outbox_dir = outbox_dir
        self.smtp_url = smtp_url
        self.mail_from = mail_from

    def _write(self, kind: str, to: str, subject: str, body: str) -> Path:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        path = self.outbox_dir / f"{stamp}-{kind}-{secrets.token_hex(3)}.txt"
        path.write_text(f"To: {to}\nSubject: {subject}\n\n{body}\n", encoding="utf-8")
        path.chmod(0o600)
        return path

    def email(self, to: str, subject: str, body: str) -> None:
        if not self.smtp_url:
            self._write("email", to, subject, body)
            return
        parts = urlsplit(self.smtp_url)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.mail_from, to, subject
        message.set_content(body)
        smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
        with smtp_class(parts.hostname, parts.port or (465 if parts.scheme == "smtps" else 25),
                        timeout=15) as smtp:
            if parts.scheme != "smtps":
                smtp.ehlo()
                if smtp.has_extn("starttls"):  # codes and names never cross a network in clear
                    smtp.starttls()
                    smtp.ehlo()
                elif parts.username or not is_loopback(parts.hostname or ""):
                    raise RuntimeError("the SMTP relay offers no STARTTLS: use smtps:// or a "
                                       "relay on this machine")
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)

    def sms(self, to: str, body: str) -> None:
        """The SMS provider interface; development writes the outbox like email does."""
        self._write("sms", to, "SMS", body)


class MailQueue:
    """A Messenger for code paths inside a transaction: the message is written to the
    mail outbox with the rest, and `send_queued_mail` sends it once committed."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def email(self, to: str, subject: str, body: str) -> None:
        self.session.add(QueuedMail(kind="email", recipient=to, subject=subject, body=body,
                                    created_at=utcnow()))

    def sms(self, to: str, body: str) -> None:
        self.session.add(QueuedMail(kind="sms", recipient=to, subject="SMS", body=body,
                                    created_at=utcnow()))


def send_queued_mail(factory: sessionmaker, messenger: Messenger, limit: int = 50) -> int:
    """Send what the mail outbox holds; each message is taken out before it is sent, so
    two gateways never send one twice (a failed send is logged, not retried: a code can
    be asked for again)."""
    with factory.begin() as session:
        rows = session.execute(select(QueuedMail).order_by(QueuedMail.id).limit(limit)
                               .with_for_update(skip_locked=True)).scalars().all()
        taken = [(m.kind, m.recipient, m.subject, m.body) for m in rows]
        if rows:
            session.execute(delete(QueuedMail).where(QueuedMail.id.in_([m.id for m in rows])))
    sent = 0
    for kind, recipient, subject, body in taken:
        try:
            if kind == "sms":
                messenger.sms(recipient, body)
            else:
                messenger.email(recipient, subject, body)
            sent += 1
        except (OSError, smtplib.SMTPException, RuntimeError) as error:
            logger.warning("a queued %s could not be sent: %s", kind, type(error).__name__)
    return sent
