"""The shop schema: stores, catalog, stock, customers, consent, requests, handover.

SQLAlchemy 1.4 declarative models written in 2.0 style. Schema changes go through
Alembic migrations in `migrations/`; `tests/test_migrations.py` checks that the
migrations and these models agree.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Float,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import declarative_base, relationship

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Base = declarative_base(metadata=MetaData(naming_convention=NAMING))

# Purposes and channels of consent; the identity and consent flows use these names.
CONSENT_PURPOSES = ("offers", "birthday", "back_in_stock", "personalisation")
CONSENT_CHANNELS = ("email", "sms", "post", "telegram", "web")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Store(Base):
    """A physical store, or the online warehouse (kind='online')."""

    __tablename__ = "stores"
    id = Column(Integer, primary_key=True)
    code = Column(String(32), nullable=False, unique=True)
    kind = Column(String(16), nullable=False, default="store")
    name = Column(String(120), nullable=False)
    address = Column(String(200), nullable=False, default="")
    city = Column(String(80), nullable=False, default="")
    postcode = Column(String(10), nullable=False, default="")
    latitude = Column(Float)
    longitude = Column(Float)
    phone = Column(String(20))
    timezone = Column(String(40), nullable=False, default="Europe/Paris")

    hours = relationship("StoreHours", back_populates="store", cascade="all, delete-orphan")
    closures = relationship("StoreClosure", back_populates="store", cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint("kind in ('store', 'online')", name="kind"),
        Index("ix_stores_city", "city"),
        Index("ix_stores_postcode", "postcode"),
    )


class StoreHours(Base):
    """Regular opening hours: one row per opening span of a weekday (0 = Monday)."""

    __tablename__ = "store_hours"
    id = Column(Integer, primary_key=True)
    store_id = Column(ForeignKey("stores.id", ondelete="CASCADE"), nullable=False)
    weekday = Column(SmallInteger, nullable=False)
    opens_at = Column(Time, nullable=False)
    closes_at = Column(Time, nullable=False)
    store = relationship("Store", back_populates="hours")

    __table_args__ = (
        CheckConstraint("weekday between 0 and 6", name="weekday"),
        Index("ix_store_hours_store_weekday", "store_id", "weekday"),
    )


class StoreClosure(Base):
    """An exceptional closure (bank holiday, inventory day) or special hours."""

    __tablename__ = "store_closures"
    id = Column(Integer, primary_key=True)
    store_id = Column(ForeignKey("stores.id", ondelete="CASCADE"), nullable=False)
    day = Column(Date, nullable=False)
    reason = Column(String(120), nullable=False, default="")
    opens_at = Column(Time)  # both null: closed all day
    closes_at = Column(Time)
    store = relationship("Store", back_populates="closures")

    __table_args__ = (UniqueConstraint("store_id", "day"),)


class Product(Base):
    __tablename__ = "products"
    id = Column(Integer, primary_key=True)
    sku = Column(String(32), nullable=False, unique=True)
    name = Column(String(160), nullable=False)
    brand = Column(String(80), nullable=False)
    department = Column(String(40), nullable=False)
    category = Column(String(80), nullable=False)
    price_cents = Column(Integer, nullable=False)
    description = Column(Text, nullable=False, default="")
    active = Column(Boolean, nullable=False, default=True)

    variants = relationship("Variant", back_populates="product", cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price"),
        Index("ix_products_brand", "brand"),
        Index("ix_products_department_category", "department", "category"),
    )


class Variant(Base):
    """A sellable unit of a product: one size and colour, with its own SKU and EAN."""

    __tablename__ = "variants"
    id = Column(Integer, primary_key=True)
    product_id = Column(ForeignKey("products.id", ondelete="CASCADE"), nullable=False)
    sku = Column(String(40), nullable=False, unique=True)
    ean = Column(String(13), nullable=False, unique=True)
    size = Column(String(16))
    colour = Column(String(40))
    product = relationship("Product", back_populates="variants")

    __table_args__ = (Index("ix_variants_product", "product_id"),)


class Stock(Base):
    """Units of a variant at a location; `reserved` units are held for pickup."""

    __tablename__ = "stock"
    variant_id = Column(ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True)
    store_id = Column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    quantity = Column(Integer, nullable=False, default=0)
    reserved = Column(Integer, nullable=False, default=0)
    updated_at = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity"),
        CheckConstraint("reserved >= 0 and reserved <= quantity", name="reserved"),
        # "Which stores have this variant?" is the hot query of the stock flows.
        Index("ix_stock_store_variant", "store_id", "variant_id"),
    )


class Restock(Base):
    __tablename__ = "restocks"
    id = Column(Integer, primary_key=True)
    variant_id = Column(ForeignKey("variants.id", ondelete="CASCADE"), nullable=False)
    store_id = Column(ForeignKey("stores.id", ondelete="CASCADE"), nullable=False)
    expected_on = Column(Date, nullable=False)
    quantity = Column(Integer, nullable=False)

    __table_args__ = (Index("ix_restocks_variant_store", "variant_id", "store_id", "expected_on"),)


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
    birthday = Column(Date)  # year BIRTHDAY_NO_YEAR when the customer gave day and month only
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


class Purchase(Base):
    __tablename__ = "purchases"
    id = Column(Integer, primary_key=True)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    variant_id = Column(ForeignKey("variants.id"), nullable=False)
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    purchased_at = Column(DateTime, nullable=False)
    quantity = Column(Integer, nullable=False, default=1)
    amount_cents = Column(Integer, nullable=False)

    __table_args__ = (Index("ix_purchases_customer", "customer_id", "purchased_at"),)


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


class Reservation(Base):
    """A hold for pickup; its units are counted in `stock.reserved` while active."""

    __tablename__ = "reservations"
    id = Column(Integer, primary_key=True)
    code = Column(String(12), nullable=False, unique=True)
    variant_id = Column(ForeignKey("variants.id"), nullable=False)
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    customer_id = Column(ForeignKey("customers.id", ondelete="SET NULL"))
    identity_id = Column(ForeignKey("chat_identities.id", ondelete="SET NULL"))
    quantity = Column(Integer, nullable=False)
    status = Column(String(16), nullable=False, default="active")
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)

    __table_args__ = (
        CheckConstraint("status in ('active', 'cancelled', 'expired', 'collected')", name="status"),
        CheckConstraint("quantity > 0", name="quantity"),
        Index("ix_reservations_status_expires", "status", "expires_at"),
    )


class StockAlert(Base):
    """A back-in-stock alert, sent once on the chosen channel."""

    __tablename__ = "stock_alerts"
    id = Column(Integer, primary_key=True)
    variant_id = Column(ForeignKey("variants.id", ondelete="CASCADE"), nullable=False)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"))
    identity_id = Column(ForeignKey("chat_identities.id", ondelete="CASCADE"))
    store_id = Column(ForeignKey("stores.id", ondelete="CASCADE"))  # null: anywhere
    channel = Column(String(16), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)

    __table_args__ = (Index("ix_stock_alerts_variant_pending", "variant_id", "sent_at"),)


class ProductLink(Base):
    """A part, consumable or accessory that goes with a product (a machine's filter)."""

    __tablename__ = "product_links"
    product_id = Column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    linked_product_id = Column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    kind = Column(String(16), nullable=False)

    __table_args__ = (
        CheckConstraint("kind in ('part', 'consumable', 'accessory')", name="kind"),
    )


class OutboundMessage(Base):
    """Transactional outbox: a message to a chat identity, written in the same
    transaction as the event that causes it, delivered once by the gateway."""

    __tablename__ = "outbox"
    id = Column(Integer, primary_key=True)
    identity_id = Column(ForeignKey("chat_identities.id", ondelete="CASCADE"), nullable=False)
    kind = Column(String(24), nullable=False)
    text = Column(Text, nullable=False)
    image_url = Column(String(300))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    delivered_at = Column(DateTime)

    __table_args__ = (Index("ix_outbox_identity_pending", "identity_id", "delivered_at"),)


class QueuedMail(Base):
    """An email or SMS written in the transaction that decided to send it and sent by
    the gateway after commit: no network call holds a database transaction, and a
    request answers in the same time whether or not a message goes out."""

    __tablename__ = "mail_outbox"
    id = Column(Integer, primary_key=True)
    kind = Column(String(8), nullable=False)  # email or sms
    recipient = Column(String(254), nullable=False)
    subject = Column(String(200), nullable=False)
    body = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (CheckConstraint("kind in ('email', 'sms')", name="kind"),)


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


class HandoverTicket(Base):
    __tablename__ = "handover_tickets"
    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    sender_id = Column(String(128), nullable=False)
    customer_id = Column(ForeignKey("customers.id", ondelete="SET NULL"))
    status = Column(String(16), nullable=False, default="open")
    priority = Column(SmallInteger, nullable=False, default=2)
    reason = Column(String(40), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    claimed_by = Column(String(80))  # the agent's display name, for the queue
    claimed_by_agent_id = Column(ForeignKey("agents.id", ondelete="SET NULL"))  # who may see it
    claimed_at = Column(DateTime)
    closed_at = Column(DateTime)
    off_hours = Column(Boolean, nullable=False, default=False)
    contact_preference = Column(String(16))  # off hours: "rappel" or "ecrit"

    __table_args__ = (
        CheckConstraint("status in ('open', 'claimed', 'handed_back', 'closed')", name="status"),
        Index("ix_handover_tickets_status_created", "status", "created_at"),
        Index("ix_handover_tickets_sender", "channel", "sender_id"),
    )


@event.listens_for(ConsentLedgerEntry, "before_update")
@event.listens_for(ConsentLedgerEntry, "before_delete")
def _ledger_is_append_only(mapper, connection, target) -> None:
    raise RuntimeError("consent_ledger is append-only")


class TicketMessage(Base):
    """What the customer and the agents said during a handover (the bot is silent)."""

    __tablename__ = "ticket_messages"
    id = Column(Integer, primary_key=True)
    ticket_id = Column(ForeignKey("handover_tickets.id", ondelete="CASCADE"), nullable=False)
    author = Column(String(16), nullable=False)
    agent_id = Column(ForeignKey("agents.id", ondelete="SET NULL"))
    text = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (
        CheckConstraint("author in ('customer', 'agent', 'system')", name="author"),
        Index("ix_ticket_messages_ticket", "ticket_id", "id"),
    )


class TicketNote(Base):
    """An internal note between agents; never shown to the customer."""

    __tablename__ = "ticket_notes"
    id = Column(Integer, primary_key=True)
    ticket_id = Column(ForeignKey("handover_tickets.id", ondelete="CASCADE"), nullable=False)
    agent_id = Column(ForeignKey("agents.id", ondelete="SET NULL"))
    text = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class Agent(Base):
    """A support staff account of the console."""

    __tablename__ = "agents"
    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(80), nullable=False)
    password_hash = Column(String(255), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class LoginFailure(Base):
    """A wrong password for an account, from one client address (kept as a keyed hash):
    failures lock that account for that address, so a stranger elsewhere cannot lock an
    agent out by knowing their username."""

    __tablename__ = "login_failures"
    id = Column(Integer, primary_key=True)
    agent_id = Column(ForeignKey("agents.id", ondelete="CASCADE"), nullable=False)
    address_ref = Column(String(64), nullable=False)
    failed_at = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_login_failures_agent", "agent_id", "failed_at"),)


class AgentSession(Base):
    """A console login: the cookie holds a random token, the table only its hash."""

    __tablename__ = "agent_sessions"
    token_hash = Column(String(64), primary_key=True)
    agent_id = Column(ForeignKey("agents.id", ondelete="CASCADE"), nullable=False)
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)


class DataAccessLog(Base):
    """Every view of a transcript or of a customer's profile by an agent; a transcript of
    a chat nobody verified has no customer id."""

    __tablename__ = "data_access_log"
    id = Column(Integer, primary_key=True)
    agent_id = Column(ForeignKey("agents.id", ondelete="SET NULL"))
    customer_id = Column(Integer)
    ticket_id = Column(Integer)
    kind = Column(String(16), nullable=False, default="profile", server_default="profile")
    viewed_at = Column(DateTime, nullable=False, default=utcnow)


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
