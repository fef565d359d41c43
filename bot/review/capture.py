"""What a turn tells the retailer, kept with no one's identity in it.

A turn the bot did not handle well (not understood, a clarifying question, out of
scope, a low-confidence guess, a person offered after misunderstandings, a product we
do not carry) is kept for review: its text masked *before* it is stored, the model's
guess and confidence, the channel, the store if one was in play. A stock question
answered "not available" in a store, or a product we do not carry, is a demand signal.

A conversation is named only by a keyed hash of its sender id, so an erasure finds the
rows of the customer's chats and nothing else does. Nothing is kept for a conversation
whose chat or customer objected to analytics (consent purpose "analytics"), and review
messages older than REVIEW_RETENTION_DAYS are purged by the gateway's jobs (those labelled
as training data stay until an erasure).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from bot.core.models import ChatIdentity, Consent, DemandSignal, ReviewMessage, SatisfactionAnswer
from bot.core.redact import mask
from bot.core.replies import Note
from bot.core.signing import signature

LOW_CONFIDENCE = 0.6  # answered, but the model was unsure (the fallback starts at 0.4)
MAX_TEXT = 2000
# A conversation's messages kept in a day: enough for any shopper, and a flood of
# nonsense from one chat does not bury everyone else's in the inbox.
MAX_KEPT_A_DAY = 20
# After a masked street, the postcode and town that complete the address.
_ADDRESS_TAIL = re.compile(r"(\[adresse\])[,\s]+\d{5}(?:\s+[A-ZÀ-Ý][\w'-]*){0,3}")


@dataclass(frozen=True)
class Turn:
    """One shopper message and what the model made of it."""

    text: str
    channel: str
    sender: str
    intent: Optional[str] = None
    confidence: Optional[float] = None
    store_code: Optional[str] = None

    @property
    def written(self) -> bool:
        """Words the shopper wrote, not a button's payload ("/check_stock{...}")."""
        return bool(self.text.strip()) and not self.text.startswith("/")


def analytics_ref(secret: str, sender: str) -> str:
    """How review, demand and satisfaction rows name a conversation (their `conversation_ref`):
    a keyed hash of its sender id, so that an erasure finds them and nobody else can tell
    whose they are. (The consent ledger names a chat by its identity's internal id instead:
    `bot.customers.consent.conversation_ref`.)"""
    return signature(secret, f"analytics-conversation:{sender}")[:32]


def masked(text: str) -> str:
    """The text as review keeps it: emails, phones, cards, codes and addresses masked."""
    text = _ADDRESS_TAIL.sub(r"\1", mask(text))
    return text[:MAX_TEXT]


def objected(session: Session, channel: str, sender: str) -> bool:
    """The chat, or the customer it is verified as, objected to analytics."""
    identity = session.execute(select(ChatIdentity).where(
        ChatIdentity.channel == channel, ChatIdentity.external_id == sender)).scalar_one_or_none()
    if identity is None:
        return False
    owners = [Consent.identity_id == identity.id]
    if identity.customer_id and identity.verified_at:
        owners.append(Consent.customer_id == identity.customer_id)
    return session.execute(select(Consent.id).where(
        or_(*owners), Consent.purpose == "analytics", Consent.granted.is_(False))).first() is not None


def worth_a_look(turn: Turn) -> bool:
    """Answered, but the model was unsure of what the shopper wrote."""
    return turn.written and turn.confidence is not None and turn.confidence < LOW_CONFIDENCE


def note_turn(session: Session, turn: Turn, reason: Optional[str], notes: Sequence[Note],
              secret: str, now: dt.datetime) -> int:
    """Keep what this turn tells the retailer; returns the rows written (0 when the
    conversation objected to analytics or there was nothing to keep)."""
    if reason is None and worth_a_look(turn):
        reason = "low_confidence"
    if reason is None and any(note.kind == "not_carried" for note in notes):
        reason = "not_carried"
    keep_text = reason is not None and turn.written
    if not (keep_text or notes) or objected(session, turn.channel, turn.sender):
        return 0
    ref = analytics_ref(secret, turn.sender)
    rows = 0
    if keep_text and session.execute(select(func.count()).select_from(ReviewMessage).where(
            ReviewMessage.conversation_ref == ref,
            ReviewMessage.created_at > now - dt.timedelta(days=1))).scalar() >= MAX_KEPT_A_DAY:
        keep_text = False
    if keep_text:
        session.add(ReviewMessage(text=masked(turn.text), reason=reason, guess=turn.intent,
                                  confidence=turn.confidence, channel=turn.channel,
                                  store_code=turn.store_code, conversation_ref=ref,
                                  created_at=now))
        rows += 1
    for note in notes:
        session.add(DemandSignal(kind=note.kind, product_sku=note.product_sku,
                                 variant_sku=note.variant_sku,
                                 asked=masked(note.asked)[:200] if note.asked else None,
                                 store_code=note.store_code or turn.store_code,
                                 channel=turn.channel, conversation_ref=ref, created_at=now))
        rows += 1
    return rows


def forget(session: Session, senders: Iterable[str], secret: str) -> int:
    """An erasure: the review messages, demand signals and satisfaction answers of these
    conversations go."""
    refs = [analytics_ref(secret, sender) for sender in set(senders)]
    if not refs:
        return 0
    return sum(session.execute(delete(model).where(model.conversation_ref.in_(refs))).rowcount
               for model in (ReviewMessage, DemandSignal, SatisfactionAnswer))


def purge(session: Session, now: dt.datetime, retention_days: int) -> int:
    """Review messages older than the retention period go, except those labelled: they
    are training data now (masked, and still removed by the customer's erasure)."""
    before = now - dt.timedelta(days=retention_days)
    return session.execute(delete(ReviewMessage).where(
        ReviewMessage.created_at < before, ReviewMessage.status != "labelled")).rowcount
