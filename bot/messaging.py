"""Email and SMS to customers: a real SMTP relay when SMTP_URL is set, otherwise (and for
SMS in development) one file per message in var/outbox/, where a person trying Comptoir
locally reads their code."""
from __future__ import annotations

import datetime as dt
import logging
import secrets
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit

logger = logging.getLogger("comptoir.messaging")


class Messenger:
    def __init__(self, outbox_dir: Path, smtp_url: Optional[str] = None,
                 mail_from: str = "Comptoir <ne-pas-repondre@comptoir.example>") -> None:
        self.outbox_dir = outbox_dir
        self.smtp_url = smtp_url
        self.mail_from = mail_from

    def _write(self, kind: str, to: str, subject: str, body: str) -> Path:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.utcnow().strftime("%Y%m%dT%H%M%S%f")
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
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)

    def sms(self, to: str, body: str) -> None:
        """The SMS provider interface; development writes the outbox like email does."""
        self._write("sms", to, "SMS", body)
