"""Delivery side of the transactional outbox (alerts, later offers and agent replies)."""
from __future__ import annotations

from typing import List

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.models import ChatIdentity, OutboundMessage, utcnow


def take_pending(session: Session, channel: str, external_id: str) -> List[str]:
    """Texts waiting for this chat, marked delivered as they are taken (each once)."""
    rows = session.execute(
        select(OutboundMessage.id, OutboundMessage.text)
        .join(ChatIdentity, ChatIdentity.id == OutboundMessage.identity_id)
        .where(ChatIdentity.channel == channel, ChatIdentity.external_id == external_id,
               OutboundMessage.delivered_at.is_(None))
        .order_by(OutboundMessage.id)).all()
    texts = []
    for row in rows:
        claimed = session.execute(
            update(OutboundMessage).where(OutboundMessage.id == row.id,
                                          OutboundMessage.delivered_at.is_(None))
            .values(delivered_at=utcnow()).execution_options(synchronize_session=False)).rowcount
        if claimed == 1:
            texts.append(row.text)
    return texts


def claim_for_channel(session: Session, channel: str, limit: int = 100) -> List[tuple]:
    """Claim pending messages of a push channel: (id, external_id, text) each, once."""
    rows = session.execute(
        select(OutboundMessage.id, ChatIdentity.external_id, OutboundMessage.text)
        .join(ChatIdentity, ChatIdentity.id == OutboundMessage.identity_id)
        .where(ChatIdentity.channel == channel, OutboundMessage.delivered_at.is_(None))
        .order_by(OutboundMessage.id).limit(limit)).all()
    claimed = []
    for row in rows:
        done = session.execute(
            update(OutboundMessage).where(OutboundMessage.id == row.id,
                                          OutboundMessage.delivered_at.is_(None))
            .values(delivered_at=utcnow()).execution_options(synchronize_session=False)).rowcount
        if done == 1:
            claimed.append((row.id, row.external_id, row.text))
    return claimed


def release(session: Session, message_id: int) -> None:
    """A claimed message could not be sent: put it back for the next round."""
    session.execute(update(OutboundMessage).where(OutboundMessage.id == message_id)
                    .values(delivered_at=None).execution_options(synchronize_session=False))
