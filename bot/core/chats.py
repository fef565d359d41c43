"""Chat identities: a Telegram user or a web session, as seen by the shop database."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.models import ChatIdentity, utcnow

CHANNELS = ("telegram", "web")


def identity_for(session: Session, channel: str, external_id: str) -> ChatIdentity:
    """The identity for this channel and id, created on first contact."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown chat channel {channel!r}")
    query = select(ChatIdentity).where(ChatIdentity.channel == channel,
                                       ChatIdentity.external_id == external_id)
    found = session.execute(query).scalar_one_or_none()
    if found is not None:
        # Inactivity is measured up to this message: keep when we saw them before it.
        found.previous_seen_at = found.last_seen_at
        session.execute(update(ChatIdentity).where(ChatIdentity.id == found.id)
                        .values(last_seen_at=utcnow()).execution_options(synchronize_session=False))
        return found
    try:
        with session.begin_nested():
            identity = ChatIdentity(channel=channel, external_id=external_id)
            session.add(identity)
        return identity
    except IntegrityError:  # the same identity created by a concurrent turn
        return session.execute(query).scalar_one()


def find_identity(session: Session, channel: str, external_id: str) -> Optional[ChatIdentity]:
    return session.execute(select(ChatIdentity).where(
        ChatIdentity.channel == channel, ChatIdentity.external_id == external_id)).scalar_one_or_none()
