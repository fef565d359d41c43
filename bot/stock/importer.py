"""Stock updates from outside: a CSV import command and the /api/stock endpoint.

Each update sets the on-hand quantity of one variant (by SKU or EAN) at one location
(store code, or WEB for the online warehouse). A variant going from none available
to some fires its back-in-stock alerts in the same transaction.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, Iterable, List, Mapping

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from bot.core.models import OutboundMessage, Store, Variant
from bot.stock.availability import set_stock


class StockUpdateError(ValueError):
    """An update names an unknown SKU or store, or a bad quantity; nothing was applied."""


def apply_stock_updates(factory: sessionmaker, updates: Iterable[Mapping]) -> Dict[str, int]:
    """Apply all updates in one transaction, or none of them."""
    updates = list(updates)
    with factory.begin() as session:
        stores = dict(session.execute(select(Store.code, Store.id)).all())
        before = session.execute(select(OutboundMessage.id).order_by(
            OutboundMessage.id.desc())).scalars().first() or 0
        back = 0
        for number, update in enumerate(updates, start=1):
            if not isinstance(update, Mapping):
                raise StockUpdateError(f"ligne {number} : un objet est attendu")
            key = str(update.get("sku") or update.get("ean") or "").strip()
            column = Variant.ean if key.isdigit() else Variant.sku
            variant_id = session.execute(select(Variant.id).where(column == key)).scalar()
            if variant_id is None:
                raise StockUpdateError(f"ligne {number} : article inconnu {key[:40]!r}")
            store_id = stores.get(str(update.get("store", "")).strip())
            if store_id is None:
                raise StockUpdateError(f"ligne {number} : magasin inconnu {str(update.get('store'))[:20]!r}")
            try:
                quantity = int(update.get("quantity"))
            except (TypeError, ValueError):
                raise StockUpdateError(f"ligne {number} : quantité invalide") from None
            if not 0 <= quantity <= 1_000_000:
                raise StockUpdateError(f"ligne {number} : quantité hors limites")
            try:
                change = set_stock(session, variant_id, store_id, quantity)
            except ValueError as error:
                raise StockUpdateError(f"ligne {number} : {error}") from None
            back += change.back_in_stock
        alerts = session.execute(select(OutboundMessage.id).where(
            OutboundMessage.id > before)).scalars().all()
    return {"updated": len(updates), "back_in_stock": back, "alerts_queued": len(alerts)}


def read_csv(path: Path) -> List[Dict[str, str]]:
    """Rows with columns sku (or ean), store, quantity."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
