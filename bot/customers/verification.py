"""Proving who someone is: one-time codes to the contact on file, or a customer token
signed by the retailer's site. A chat identity is linked to a customer only after proof,
and the link lapses after inactivity.

The public answer to "here is my email" is the same whether or not the customer exists.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass
from typing import Optional, Tuple

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.messaging import MailQueue
from bot.core.models import ChatIdentity, Customer, UsedCustomerToken, VerificationCode
from bot.core.signing import same, signature, signature_bytes

CODE_MINUTES = 10
MAX_ATTEMPTS = 5
MAX_CODES_PER_IDENTITY = 3  # per 15 minutes
MAX_CODES_PER_CONTACT = 5  # per hour, per contact typed, known or not
IDLE_MINUTES = 30  # a verified chat lapses after this long without a message
FRESH_MINUTES = 5  # export, erasure and contact changes want a proof this recent

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}")
CARD_RE = re.compile(r"\b\d{12}\b")
CODE_RE = re.compile(r"\b\d{6}\b")


def normalise_phone(text: str) -> Optional[str]:
    digits = re.sub(r"[^\d+]", "", text)
    if digits.startswith("0") and len(digits) == 10:
        return "+33" + digits[1:]
    if digits.startswith("+33") and len(digits) == 12:
        return digits
    return None


@dataclass(frozen=True)
class Contact:
    kind: str  # email, phone or card
    value: str


def read_contact(text: str) -> Optional[Contact]:
    """An email, a French phone number or a loyalty card number in a message."""
    email = EMAIL_RE.search(text)
    if email:
        return Contact("email", email.group(0).lower())
    phone = PHONE_RE.search(text)
    if phone and normalise_phone(phone.group(0)):
        return Contact("phone", normalise_phone(phone.group(0)))
    card = CARD_RE.search(text)
    if card:
        return Contact("card", card.group(0))
    return None


def find_customer(session: Session, contact: Contact) -> Optional[Customer]:
    column = {"email": Customer.email, "phone": Customer.phone, "card": Customer.loyalty_card}[contact.kind]
    return session.execute(select(Customer).where(column == contact.value,
                                                  Customer.erased_at.is_(None))).scalar_one_or_none()


def _hash(secret: str, identity_id: int, code: str) -> str:
    return signature(secret, f"{identity_id}:{code}")


def mask(contact: str) -> str:
    """What the customer may be told about where the code went: "c•••@example.org"."""
    if "@" in contact:
        name, domain = contact.split("@", 1)
        return f"{name[:1]}•••@{domain}"
    return f"••• {contact[-2:]}"


def contact_ref(secret: str, contact: Contact) -> str:
    """The contact as typed, normalised and keyed: codes are counted per contact whether
    or not a customer has it, and the contact itself is not stored."""
    return signature(secret, f"contact:{contact.kind}:{contact.value}")


class Verifier:
    def __init__(self, secret: str) -> None:
        self.secret = secret

    def _count_recent(self, session: Session, condition, since: dt.datetime) -> int:
        return session.execute(select(func.count()).select_from(VerificationCode).where(
            condition, VerificationCode.created_at > since)).scalar()

    def request_code(self, session: Session, identity: ChatIdentity, contact: Contact,
                     now: dt.datetime, purpose: str = "link",
                     customer: Optional[Customer] = None) -> bool:
        """Queue a code if allowed; False when rate-limited. The limits count the chat and
        the contact typed, never whether a customer has it, and an unknown contact is
        answered alike: nothing here tells which contacts exist. The message leaves from
        the mail outbox after commit (`bot.core.messaging.send_queued_mail`)."""
        ref = contact_ref(self.secret, contact)
        if session.bind.dialect.name == "postgresql":
            # Count-then-insert for one contact, one request at a time (SQLite has one writer).
            session.execute(select(func.pg_advisory_xact_lock(int(ref[:15], 16))))
        if self._count_recent(session, VerificationCode.identity_id == identity.id,
                              now - dt.timedelta(minutes=15)) >= MAX_CODES_PER_IDENTITY:
            return False
        if self._count_recent(session, VerificationCode.contact_ref == ref,
                              now - dt.timedelta(hours=1)) >= MAX_CODES_PER_CONTACT:
            return False
        if customer is None and purpose == "link":
            customer = find_customer(session, contact)
        code = f"{secrets.randbelow(10**6):06d}"
        session.add(VerificationCode(
            identity_id=identity.id, customer_id=customer.id if customer else None, purpose=purpose,
            new_value=contact.value if purpose != "link" else None, contact_ref=ref,
            code_hash=_hash(self.secret, identity.id, code), attempts=0, created_at=now,
            expires_at=now + dt.timedelta(minutes=CODE_MINUTES)))
        session.flush()
        if customer is None:
            return True  # nobody to write to; same answer as for a real customer
        mail = MailQueue(session)
        body = (f"Bonjour,\n\nVotre code Comptoir : {code}\nIl est valable {CODE_MINUTES} minutes. "
                "Ne le communiquez à personne : nous ne vous le demanderons jamais par téléphone.\n\n"
                "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.")
        if purpose == "new_phone" or (purpose == "link" and contact.kind == "phone"):
            mail.sms(contact.value if purpose != "link" else customer.phone,
                     f"Comptoir : votre code est {code} (valable {CODE_MINUTES} min).")
        else:
            to = contact.value if purpose == "new_email" else customer.email
            mail.email(to, "Votre code de vérification Comptoir", body)
        return True

    def check_code(self, session: Session, identity: ChatIdentity, code: str,
                   now: dt.datetime) -> Tuple[str, Optional[VerificationCode]]:
        """"ok", "wrong", "expired", "exhausted" or "none" (no code pending)."""
        pending = session.execute(select(VerificationCode).where(
            VerificationCode.identity_id == identity.id, VerificationCode.used_at.is_(None))
            .order_by(VerificationCode.id.desc())).scalars().first()
        if pending is None:
            return "none", None
        if pending.attempts >= MAX_ATTEMPTS:
            return "exhausted", pending
        if pending.expires_at <= now:
            return "expired", pending
        pending.attempts += 1
        expected = _hash(self.secret, identity.id, code.strip())
        if not same(expected, pending.code_hash):
            return ("exhausted" if pending.attempts >= MAX_ATTEMPTS else "wrong"), pending
        pending.used_at = now
        if pending.customer_id is None:
            return "wrong", pending  # a code for an unknown contact can never succeed
        if pending.purpose == "link":
            identity.customer_id = pending.customer_id
            identity.verified_at = now
            identity.last_seen_at = now
        return "ok", pending


def verified_customer(identity: Optional[ChatIdentity], now: dt.datetime) -> Optional[int]:
    """The customer behind this chat, if proven and not idle for too long."""
    if identity is None or identity.customer_id is None or identity.verified_at is None:
        return None
    seen = getattr(identity, "previous_seen_at", None) or identity.last_seen_at
    if seen is not None and now - max(seen, identity.verified_at) > dt.timedelta(minutes=IDLE_MINUTES):
        return None
    return identity.customer_id


def fresh_proof(identity: ChatIdentity, now: dt.datetime) -> bool:
    return identity.verified_at is not None and \
        now - identity.verified_at <= dt.timedelta(minutes=FRESH_MINUTES)


def unlink(identity: ChatIdentity) -> bool:
    was = identity.customer_id is not None
    identity.customer_id = None
    identity.verified_at = None
    return was


# Customer tokens signed by the retailer's site -------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_customer_token(secret: str, loyalty_card: str, expires: dt.datetime,
                        jti: Optional[str] = None) -> str:
    """What the retailer's site does (documented for integrators, used by tests)."""
    payload = _b64(json.dumps({"card": loyalty_card, "exp": int(expires.timestamp()),
                               "jti": jti or secrets.token_urlsafe(16)}).encode())
    return f"{payload}.{_b64(signature_bytes(secret, payload))}"


def accept_customer_token(session: Session, secret: Optional[str], token: str,
                          identity: ChatIdentity, now: dt.datetime) -> Optional[int]:
    """Link the chat to the customer named by a valid token; None for forged, expired or
    replayed tokens (and when no secret is configured)."""
    if not secret or not isinstance(token, str) or token.count(".") != 1 or len(token) > 2048:
        return None
    payload, given = token.split(".")
    if not same(_b64(signature_bytes(secret, payload)), given):
        return None
    try:
        claims = json.loads(_unb64(payload))
        expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.timezone.utc).replace(tzinfo=None)
        jti, card = str(claims["jti"])[:64], str(claims["card"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires <= now:
        return None
    customer = find_customer(session, Contact("card", card))
    if customer is None:
        return None
    try:
        with session.begin_nested():
            session.add(UsedCustomerToken(jti=jti, expires_at=expires))
    except IntegrityError:
        return None  # replayed
    identity.customer_id, identity.verified_at, identity.last_seen_at = customer.id, now, now
    return customer.id
