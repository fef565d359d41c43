"""Support and delivery: handover tickets with their messages and notes, agents with their
logins and what they viewed, and the outboxes (chat messages, mail).
"""
from __future__ import annotations

from sqlalchemy import (Boolean, CheckConstraint, Column, DateTime, ForeignKey, Index, Integer,
                        SmallInteger, String, Text)

from bot.core.models.base import Base, utcnow


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


# What an account may do in the console: agents handle tickets and requests; reviewers
# also label misunderstood messages and see the dashboard; admins also retrain.
AGENT_ROLES = ("agent", "reviewer", "admin")


class Agent(Base):
    """A support staff account of the console."""

    __tablename__ = "agents"
    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(80), nullable=False)
    password_hash = Column(String(255), nullable=False)
    role = Column(String(12), nullable=False, default="agent", server_default="agent")
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
