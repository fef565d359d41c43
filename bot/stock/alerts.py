"""Back-in-stock alerts: recorded only with consent, sent exactly once.

An alert on the chat the shopper writes from needs that chat's consent for the
`back_in_stock` purpose, given by choosing "ici" after reading ALERT_WORDING. When
stock of the variant goes from zero to positive, the message is written to the outbox
in the same transaction as the stock change and the alert is marked sent: a rerun,
a second update or a crash in between can never send it twice.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.models import (ChatIdentity, OutboundMessage, Product, StockAlert, Store, Variant,
                             utcnow)
from bot.customers.consent import consent_granted, conversation_ref, set_consent

ALERT_WORDING_VERSION = "alerte-stock-2025-01"
ALERT_WORDING = ("En choisissant « Ici », vous acceptez de recevoir dans cette conversation "
                 "un seul message quand l'article sera de retour. Vous pourrez l'annuler à tout "
                 "moment en écrivant STOP.")


def subscribe_here(session: Session, identity: ChatIdentity, variant_id: int,
                   store_id: Optional[int]) -> bool:
    """Consent for this chat and purpose, then the alert; False if it already existed."""
    set_consent(session, "back_in_stock", identity.channel, True, identity_id=identity.id,
                source_channel=identity.channel, source_conversation=conversation_ref(identity.id),
                wording_version=ALERT_WORDING_VERSION)
    existing = session.execute(select(StockAlert.id).where(
        StockAlert.identity_id == identity.id, StockAlert.variant_id == variant_id,
        StockAlert.sent_at.is_(None),
        StockAlert.store_id.is_(None) if store_id is None else StockAlert.store_id == store_id,
    )).first()
    if existing:
        return False
    session.add(StockAlert(variant_id=variant_id, identity_id=identity.id, store_id=store_id,
                           channel=identity.channel))
    session.flush()
    return True


def _message(session: Session, variant_id: int, store_id: int) -> str:
    product, variant = session.execute(
        select(Product, Variant).join(Variant, Variant.product_id == Product.id)
        .where(Variant.id == variant_id)).one()
    store = session.get(Store, store_id)
    detail = ", ".join(v for v in (variant.size, variant.colour) if v)
    name = f"{product.name} ({detail})" if detail else product.name
    where = "en ligne" if store.kind == "online" else f"à {store.name}"
    return (f"Bonne nouvelle : {name} est de retour en stock {where}. "
            "Voulez-vous que je vous le mette de côté ?")


def fire_alerts(session: Session, variant_id: int, store_id: int) -> int:
    """Queue the messages of the pending alerts this stock arrival satisfies."""
    pending = session.execute(select(StockAlert).where(
        StockAlert.variant_id == variant_id, StockAlert.sent_at.is_(None),
        (StockAlert.store_id.is_(None)) | (StockAlert.store_id == store_id))).scalars().all()
    sent = 0
    for alert in pending:
        claimed = session.execute(
            update(StockAlert).where(StockAlert.id == alert.id, StockAlert.sent_at.is_(None))
            .values(sent_at=utcnow()).execution_options(synchronize_session=False)).rowcount
        if claimed != 1 or alert.identity_id is None:
            continue
        if not consent_granted(session, "back_in_stock", alert.channel,
                               identity_id=alert.identity_id):
            continue  # consent withdrawn since: the alert lapses silently
        session.add(OutboundMessage(identity_id=alert.identity_id, kind="back_in_stock",
                                    text=_message(session, variant_id, store_id)))
        sent += 1
    session.flush()
    return sent
