"""Customers and what is theirs: loyalty members, the chats they write from, consent and
its append-only ledger, vouchers and birthday pushes, personal-data requests, export
links, one-time codes and used sign-in tokens.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (Boolean, CheckConstraint, Column, Date, DateTime, ForeignKey, Index,
                        Integer, String, Text, UniqueConstraint, event)
from sqlalchemy.orm import validates

from bot.core.models.base import Base, utcnow


# A birthday offer needs the day and the month, never the year (data minimisation): every
# birthday is stored in this leap year, so 29 February fits.
BIRTHDAY_NO_YEAR = 1904


class Customer(Base):
    __tablename__ = "customers"
    id = Column(Integer, primary_key=True)
    loyalty_card = Column(String(20), unique=True)
    loyalty_status = Column(String(16), nullable=False, default="none")
    loyalty_points = Column(Integer, nullable=False, default=0)
    home_store_id = Column(ForeignKey("stores.id", ondelete="SET NULL"))
    first_name = Column(String(80))
    last_name = Column(String(80))
    email = Column(String(254), unique=True)
    phone = Column(String(20), unique=True)
    birthday = Column(Date)  # day and month only: the year is always BIRTHDAY_NO_YEAR
    preferred_channel = Column(String(16))
    address_line = Column(String(200))
    address_postcode = Column(String(10))
    address_city = Column(String(80))
    language = Column(String(8), nullable=False, default="fr")
    created_at = Column(DateTime, nullable=False, default=utcnow)
    erased_at = Column(DateTime)
    loyalty_activated_at = Column(DateTime)
    loyalty_activated_via = Column(String(16))  # telegram, web, or a store code

    __table_args__ = (
        CheckConstraint(
            "loyalty_status in ('none', 'pending', 'active', 'suspended')", name="loyalty_status"
        ),
    )

    @validates("birthday")
    def _day_and_month_only(self, _key: str, value: Optional[dt.date]) -> Optional[dt.date]:
        """Whatever a caller passes, the year is not kept."""
        return value.replace(year=BIRTHDAY_NO_YEAR) if value is not None else None


class ChatIdentity(Base):
    """A channel identity (Telegram user id, web session id), linked once verified."""

    __tablename__ = "chat_identities"
    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    external_id = Column(String(128), nullable=False)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"))
    verified_at = Column(DateTime)
    last_seen_at = Column(DateTime, nullable=False, default=utcnow)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_chat_identities_customer", "customer_id"),
    )


class Consent(Base):
    """Current consent state per purpose and channel (the ledger proves it).

    It belongs to a verified customer or, for the chat a shopper writes from (a
    back-in-stock alert "ici", a STOP in an unverified chat), to that chat identity.
    """

    __tablename__ = "consents"
    id = Column(Integer, primary_key=True)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"))
    identity_id = Column(ForeignKey("chat_identities.id", ondelete="CASCADE"))
    purpose = Column(String(32), nullable=False)
    channel = Column(String(16), nullable=False)
    granted = Column(Boolean, nullable=False)
    wording_version = Column(String(32), nullable=False)
    updated_at = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint("customer_id", "purpose", "channel"),
        UniqueConstraint("identity_id", "purpose", "channel"),
        CheckConstraint("customer_id is not null or identity_id is not null", name="owner"),
    )


class ConsentLedgerEntry(Base):
    """Append-only proof of every consent change. Never updated nor deleted."""

    __tablename__ = "consent_ledger"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer)  # plain ids: kept even after erasure
    identity_id = Column(Integer)
    purpose = Column(String(32), nullable=False)
    channel = Column(String(16), nullable=False)
    old_state = Column(Boolean)
    new_state = Column(Boolean, nullable=False)
    recorded_at = Column(DateTime, nullable=False, default=utcnow)
    source_channel = Column(String(16), nullable=False)
    source_conversation = Column(String(128))
    wording_version = Column(String(32), nullable=False)

    __table_args__ = (
        Index("ix_consent_ledger_customer", "customer_id", "recorded_at"),
        Index("ix_consent_ledger_identity", "identity_id", "recorded_at"),
    )


class Voucher(Base):
    __tablename__ = "vouchers"
    id = Column(Integer, primary_key=True)
    code = Column(String(24), nullable=False, unique=True)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    kind = Column(String(16), nullable=False, default="birthday")
    year = Column(Integer, nullable=False)
    amount_cents = Column(Integer)
    percent_off = Column(Integer)
    department = Column(String(40))
    issued_at = Column(DateTime, nullable=False, default=utcnow)
    expires_on = Column(Date, nullable=False)
    used_at = Column(DateTime)
    applies_to = Column(String(160), nullable=False, default="", server_default="")  # French, as shown
    categories = Column(Text)  # JSON list of catalog categories; null: the whole shop
    minimum_cents = Column(Integer)
    rule = Column(String(40))  # which offer rule chose it ("generic" without personalisation)
    used_where = Column(String(40))  # store code or "web"

    # One birthday voucher per customer and year, whatever the number of requests.
    __table_args__ = (UniqueConstraint("customer_id", "kind", "year"),)


class BirthdayPush(Base):
    """The birthday message of one year to one member: created with the voucher, in the
    same transaction, before anything is sent. Its uniqueness makes the push at most once a
    year; `status` goes queued -> sending -> sent (or failed) by conditional updates."""

    __tablename__ = "birthday_pushes"
    id = Column(Integer, primary_key=True)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    year = Column(Integer, nullable=False)
    voucher_id = Column(ForeignKey("vouchers.id", ondelete="CASCADE"), nullable=False)
    channel = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False, default="queued")
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)

    __table_args__ = (
        UniqueConstraint("customer_id", "year"),
        CheckConstraint("status in ('queued', 'sending', 'sent', 'failed')", name="status"),
        CheckConstraint("channel in ('telegram', 'email', 'sms')", name="channel"),
        Index("ix_birthday_pushes_status", "status"),
    )


class ExportLink(Base):
    """A link to a customer's data export: one download, within a day, unless revoked
    (logging out of the chat and erasure revoke them). Only the token's hash is kept."""

    __tablename__ = "export_links"
    id = Column(Integer, primary_key=True)
    token_hash = Column(String(64), nullable=False, unique=True)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    used_at = Column(DateTime)
    revoked_at = Column(DateTime)


class PrivacyRequestChange(Base):
    """Who moved a data request to which status, and when: the audit trail of staff acts."""

    __tablename__ = "privacy_request_changes"
    id = Column(Integer, primary_key=True)
    request_id = Column(ForeignKey("privacy_requests.id", ondelete="CASCADE"), nullable=False)
    agent_id = Column(ForeignKey("agents.id", ondelete="SET NULL"))
    from_status = Column(String(16), nullable=False)
    to_status = Column(String(16), nullable=False)
    changed_at = Column(DateTime, nullable=False, default=utcnow)


class PrivacyRequest(Base):
    __tablename__ = "privacy_requests"
    id = Column(Integer, primary_key=True)
    customer_id = Column(ForeignKey("customers.id", ondelete="SET NULL"))
    kind = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False, default="received")
    details = Column(Text)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    due_at = Column(DateTime, nullable=False)
    closed_at = Column(DateTime)

    __table_args__ = (
        CheckConstraint(
            "kind in ('access', 'export', 'rectification', 'erasure', 'objection')", name="kind"
        ),
        CheckConstraint(
            "status in ('received', 'verified', 'in_progress', 'done', 'refused')", name="status"
        ),
        Index("ix_privacy_requests_status_due", "status", "due_at"),
    )


@event.listens_for(ConsentLedgerEntry, "before_update")
@event.listens_for(ConsentLedgerEntry, "before_delete")
def _ledger_is_append_only(mapper, connection, target) -> None:
    raise RuntimeError("consent_ledger is append-only")


class VerificationCode(Base):
    """A one-time code sent to a customer's contact on file; only its hash is kept."""

    __tablename__ = "verification_codes"
    id = Column(Integer, primary_key=True)
    identity_id = Column(ForeignKey("chat_identities.id", ondelete="CASCADE"), nullable=False)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"))  # null: unknown contact
    purpose = Column(String(16), nullable=False, default="link")  # link, or new_email/new_phone
    new_value = Column(String(254))  # the contact being verified for a correction
    code_hash = Column(String(64), nullable=False)
    contact_ref = Column(String(64))  # keyed hash of the contact typed, known or not
    attempts = Column(Integer, nullable=False, default=0)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    used_at = Column(DateTime)

    __table_args__ = (
        Index("ix_verification_codes_identity", "identity_id", "created_at"),
        Index("ix_verification_codes_customer", "customer_id", "created_at"),
        Index("ix_verification_codes_contact", "contact_ref", "created_at"),
    )


class UsedCustomerToken(Base):
    """Ids of customer tokens already accepted from the retailer's site (no replay)."""

    __tablename__ = "used_customer_tokens"
    jti = Column(String(64), primary_key=True)
    expires_at = Column(DateTime, nullable=False)
