"""Delivery side of the transactional outbox (alerts, later offers and agent replies)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.models import ChatIdentity, OutboundMessage, utcnow


Message = Dict[str, Any]  # {"text": ..., "image": url (optional)}, like a Rasa reply


def _claim(session: Session, *conditions, limit: Optional[int] = None) -> List[Tuple[int, str, Message]]:
    """Undelivered messages matching `conditions`, each marked delivered by exactly one
    caller however many run at once: (id, external_id, message)."""
    query = (select(OutboundMessage.id, ChatIdentity.external_id, OutboundMessage.text,
                    OutboundMessage.image_url)
             .join(ChatIdentity, ChatIdentity.id == OutboundMessage.identity_id)
             .where(OutboundMessage.delivered_at.is_(None), *conditions)
             .order_by(OutboundMessage.id))
    claimed = []
    for row in session.execute(query.limit(limit) if limit else query).all():
        done = session.execute(
            update(OutboundMessage).where(OutboundMessage.id == row.id,
                                          OutboundMessage.delivered_at.is_(None))
            .values(delivered_at=utcnow()).execution_options(synchronize_session=False)).rowcount
        if done == 1:
            message: Message = {"text": row.text}
            if row.image_url:
                message["image"] = row.image_url
            claimed.append((row.id, row.external_id, message))
    return claimed


def take_pending(session: Session, channel: str, external_id: str) -> List[Message]:
    """Messages waiting for this chat, marked delivered as they are taken (each once)."""
    return [message for _id, _external, message in _claim(
        session, ChatIdentity.channel == channel, ChatIdentity.external_id == external_id)]


def claim_for_channel(session: Session, channel: str, limit: int = 100) -> List[Tuple[int, str, Message]]:
    """Claim pending messages of a push channel: (id, external_id, message) each, once."""
    return _claim(session, ChatIdentity.channel == channel, limit=limit)


def release(session: Session, message_id: int) -> None:
    """A claimed message could not be sent: put it back for the next round."""
    session.execute(update(OutboundMessage).where(OutboundMessage.id == message_id)
                    .values(delivered_at=None).execution_options(synchronize_session=False))
