"""What the retailer learns from conversations, with no one's identity in it: messages
the bot misunderstood, kept masked for review, demand signals (asked for and not
available in a store, asked for and not carried), and satisfaction answers.

A conversation appears only as a keyed hash of its sender id (`conversation_ref`), which
names no one and lets an erasure find the rows of the customer's chats.
"""
from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, ForeignKey, Index, Integer, String

from bot.core.models.base import Base, utcnow

REVIEW_REASONS = ("fallback", "clarify", "out_of_scope", "low_confidence", "handover",
                  "not_carried")
REVIEW_STATUSES = ("new", "labelled", "ignored")
DEMAND_KINDS = ("not_available", "not_carried")


class ReviewMessage(Base):
    """A message the bot did not handle well, masked before it was stored."""

    __tablename__ = "review_messages"
    id = Column(Integer, primary_key=True)
    text = Column(String(2000), nullable=False)
    reason = Column(String(16), nullable=False)
    guess = Column(String(64))  # the intent the model gave it
    confidence = Column(Float)
    channel = Column(String(16), nullable=False)
    store_code = Column(String(50))
    conversation_ref = Column(String(64), nullable=False, index=True)
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    status = Column(String(12), nullable=False, default="new", server_default="new")
    label = Column(String(64))  # an intent of the domain, or "out_of_scope"
    entity = Column(String(32))  # optionally, one entity marked in the text ...
    entity_start = Column(Integer)  # ... by its position in `text`
    entity_end = Column(Integer)
    labelled_by = Column(ForeignKey("agents.id", ondelete="SET NULL"))
    labelled_at = Column(DateTime)

    __table_args__ = (Index("ix_review_messages_status", "status", "created_at"),)


class DemandSignal(Base):
    """A shopper asked for something the shop could not give: an item not available in
    the store asked about, or a product the catalog does not carry (its name, masked)."""

    __tablename__ = "demand_signals"
    id = Column(Integer, primary_key=True)
    kind = Column(String(16), nullable=False)
    product_sku = Column(String(50))
    variant_sku = Column(String(50))
    asked = Column(String(200))  # what was asked for, as said (not carried)
    store_code = Column(String(50))
    channel = Column(String(16), nullable=False)
    conversation_ref = Column(String(64), nullable=False, index=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_demand_signals_kind", "kind", "created_at"),)


class SatisfactionAnswer(Base):
    """A one-tap satisfaction question asked in a conversation, and its answer (1 for
    yes, 0 for no): kept with the conversation's intent and channel only."""

    __tablename__ = "satisfaction"
    id = Column(Integer, primary_key=True)
    kind = Column(String(12), nullable=False)  # "bot" (solved by the bot) or "handover"
    intent = Column(String(64))  # what the conversation was about
    channel = Column(String(16), nullable=False)
    conversation_ref = Column(String(64), nullable=False, index=True)
    asked_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    score = Column(Integer)
    answered_at = Column(DateTime)
