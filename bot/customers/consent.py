"""Consent state and its append-only ledger."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.chats import identity_for
from bot.core.models import (CONSENT_CHANNELS, CONSENT_PURPOSES, MESSAGE_PURPOSES, Consent,
                             ConsentLedgerEntry, utcnow)


def consent_granted(session: Session, purpose: str, channel: str, *,
                    customer_id: Optional[int] = None, identity_id: Optional[int] = None) -> bool:
    owner = Consent.customer_id == customer_id if customer_id else Consent.identity_id == identity_id
    row = session.execute(select(Consent.granted).where(
        owner, Consent.purpose == purpose, Consent.channel == channel)).scalar_one_or_none()
    return bool(row)


def allows_personalisation(session: Session, customer_id: int) -> bool:
    """Purchase history may shape suggestions and offers only with this consent (given on
    any channel: it is about the use of data, not about a channel)."""
    return session.execute(select(Consent.id).where(
        Consent.customer_id == customer_id, Consent.purpose == "personalisation",
        Consent.granted.is_(True))).first() is not None


def set_consent(session: Session, purpose: str, channel: str, granted: bool, *,
                source_channel: str, wording_version: str,
                customer_id: Optional[int] = None, identity_id: Optional[int] = None,
                source_conversation: Optional[str] = None) -> bool:
    """Record a consent decision; returns True if the state changed (and was ledgered)."""
    if purpose not in CONSENT_PURPOSES or channel not in CONSENT_CHANNELS:
        raise ValueError(f"unknown consent {purpose}/{channel}")
    if (customer_id is None) == (identity_id is None):
        raise ValueError("a consent belongs to exactly one customer or chat identity")
    owner = Consent.customer_id == customer_id if customer_id else Consent.identity_id == identity_id
    row = session.execute(select(Consent).where(owner, Consent.purpose == purpose,
                                                Consent.channel == channel)
                          .with_for_update()).scalar_one_or_none()
    old = None if row is None else row.granted
    if old == granted:
        return False
    now = utcnow()
    if row is None:
        session.add(Consent(customer_id=customer_id, identity_id=identity_id, purpose=purpose,
                            channel=channel, granted=granted, wording_version=wording_version,
                            updated_at=now))
    else:
        row.granted, row.wording_version, row.updated_at = granted, wording_version, now
    session.add(ConsentLedgerEntry(
        customer_id=customer_id, identity_id=identity_id, purpose=purpose, channel=channel,
        old_state=old, new_state=granted, recorded_at=now, source_channel=source_channel,
        source_conversation=source_conversation, wording_version=wording_version))
    session.flush()
    return True


STOP_WORDING_VERSION = "stop-2025-01"


def conversation_ref(identity_id: int) -> str:
    """How the ledger names a conversation: the chat identity's internal id, which
    identifies nobody once an erasure has deleted that identity."""
    return f"identity:{identity_id}"


def stop_chat(session: Session, channel: str, external_id: str) -> int:
    """STOP from a chat: no more messages of any purpose to this chat, verified or not.

    Records a refusal for every purpose on this chat's channel (for the chat identity,
    and for the customer it is linked to if verified); returns the ledger entries added.
    """
    identity = identity_for(session, channel, external_id)
    changed = 0
    for purpose in MESSAGE_PURPOSES:
        changed += set_consent(session, purpose, channel, False, identity_id=identity.id,
                               source_channel=channel,
                               source_conversation=conversation_ref(identity.id),
                               wording_version=STOP_WORDING_VERSION)
        if identity.customer_id and identity.verified_at:
            changed += set_consent(session, purpose, channel, False,
                                   customer_id=identity.customer_id, source_channel=channel,
                                   source_conversation=conversation_ref(identity.id),
                                   wording_version=STOP_WORDING_VERSION)
    return changed
