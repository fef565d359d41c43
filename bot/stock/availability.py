"""Stock: availability of a variant in a store and online, nearest stores that have
it, alternatives, and stock updates (which fire back-in-stock alerts)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from bot.core.models import Product, Restock, Stock, Store, Variant, utcnow
from bot.core.text import format_date
from bot.stock.alerts import fire_alerts
from bot.stock.catalog import ProductInfo, VariantInfo
from bot.stores.geo import Place, distance_km


def band(available: int) -> str:
    """What the shopper reads: never the exact count above a few units."""
    if available <= 0:
        return "épuisé"
    if available <= 2:
        return f"plus que {available}"
    return "en stock"


@dataclass(frozen=True)
class StoreRef:
    id: int
    code: str
    name: str
    city: str
    latitude: float
    longitude: float

    @classmethod
    def of(cls, store: Store) -> "StoreRef":
        return cls(store.id, store.code, store.name, store.city, store.latitude, store.longitude)


@dataclass(frozen=True)
class Availability:
    available: int
    next_restock: Optional[dt.date]
    carried: bool  # the location lists the variant at all


@dataclass(frozen=True)
class NearbyStock:
    store: StoreRef
    available: int
    distance_km: Optional[float]


@dataclass
class StockReport:
    product: ProductInfo
    variant: VariantInfo
    store: Optional[StoreRef]
    at_store: Optional[Availability]
    online: Availability
    nearby: List[NearbyStock] = field(default_factory=list)
    alternatives: List[Tuple[ProductInfo, str]] = field(default_factory=list)


def availability(session: Session, variant_id: int, store_id: int, today: dt.date) -> Availability:
    row = session.execute(select(Stock.quantity, Stock.reserved).where(
        Stock.variant_id == variant_id, Stock.store_id == store_id)).first()
    restock = session.execute(select(func.min(Restock.expected_on)).where(
        Restock.variant_id == variant_id, Restock.store_id == store_id,
        Restock.expected_on >= today)).scalar()
    if row is None:
        return Availability(0, restock, carried=False)
    return Availability(row.quantity - row.reserved, restock, carried=True)


def online_store(session: Session) -> Store:
    return session.execute(select(Store).where(Store.kind == "online")).scalars().first()


def stores_with_stock(session: Session, variant_id: int, origin: Optional[Place],
                      limit: int = 3, exclude: Optional[int] = None) -> List[NearbyStock]:
    """Physical stores where the variant is available, nearest first."""
    rows = session.execute(
        select(Store, (Stock.quantity - Stock.reserved).label("available"))
        .join(Stock, Stock.store_id == Store.id)
        .where(Stock.variant_id == variant_id, Store.kind == "store",
               Stock.quantity - Stock.reserved > 0)
    ).all()
    found = []
    for store, available in rows:
        if store.id == exclude:
            continue
        km = None
        if origin is not None and store.latitude is not None:
            km = distance_km((origin.latitude, origin.longitude), (store.latitude, store.longitude))
        found.append(NearbyStock(StoreRef.of(store), available, km))
    found.sort(key=lambda n: (n.distance_km if n.distance_km is not None else 0, -n.available,
                              n.store.name))
    return found[:limit]


def nearest_stores(session: Session, origin: Place, limit: int = 3) -> List[Tuple[Store, float]]:
    stores = session.execute(select(Store).where(Store.kind == "store")).scalars().all()
    ranked = sorted(((s, distance_km((origin.latitude, origin.longitude), (s.latitude, s.longitude)))
                     for s in stores), key=lambda item: item[1])
    return ranked[:limit]


def alternatives(session: Session, product: ProductInfo, store_id: Optional[int],
                 limit: int = 3) -> List[Tuple[int, str]]:
    """Other products of the same category (then brand) available here or online."""
    online_id = online_store(session).id
    locations = [online_id] + ([store_id] if store_id else [])
    found: List[Tuple[int, str]] = []
    for criterion in (Product.category == product.category, Product.brand == product.brand):
        rows = session.execute(
            select(Product.id, Product.name, func.sum(Stock.quantity - Stock.reserved).label("n"))
            .join(Variant, Variant.product_id == Product.id)
            .join(Stock, Stock.variant_id == Variant.id)
            .where(criterion, Product.id != product.id, Product.active.is_(True),
                   Stock.store_id.in_(locations), Stock.quantity - Stock.reserved > 0)
            .group_by(Product.id, Product.name)
            .order_by(func.abs(Product.price_cents - product.price_cents), Product.id)
            .limit(limit)
        ).all()
        for row in rows:
            if row.id not in [f[0] for f in found]:
                found.append((row.id, row.name))
        if len(found) >= limit:
            break
    return found[:limit]


def stock_report(session: Session, product: ProductInfo, variant: VariantInfo,
                 store: Optional[Store], origin: Optional[Place], today: dt.date) -> StockReport:
    online = online_store(session)
    at_store = availability(session, variant.id, store.id, today) if store else None
    report = StockReport(product, variant, StoreRef.of(store) if store else None, at_store,
                         availability(session, variant.id, online.id, today))
    if store is None or at_store.available <= 0:
        if origin is None and store is not None:
            origin = Place(store.city, store.latitude, store.longitude)
        report.nearby = stores_with_stock(session, variant.id, origin,
                                          exclude=store.id if store else None)
        if store is not None or report.online.available <= 0:
            ids = alternatives(session, product, store.id if store else None)
            report.alternatives = [(pid, name) for pid, name in ids]
    return report


# Stock updates ------------------------------------------------------------------------

@dataclass(frozen=True)
class StockChange:
    variant_id: int
    store_id: int
    before: int  # available units before the change
    after: int

    @property
    def back_in_stock(self) -> bool:
        """None available before, some now: the moment alerts are due."""
        return self.before <= 0 < self.after


def set_stock(session: Session, variant_id: int, store_id: int, quantity: int) -> StockChange:
    """Set the on-hand quantity of a variant at a location (inventory count, delivery).

    Held units stay held: a count below the held units is refused.
    """
    if quantity < 0:
        raise ValueError("quantity must be zero or more")
    row = session.execute(select(Stock).where(Stock.variant_id == variant_id,
                                              Stock.store_id == store_id)
                          .with_for_update()).scalar_one_or_none()
    if row is None:
        row = Stock(variant_id=variant_id, store_id=store_id, quantity=0, reserved=0)
        session.add(row)
        session.flush()
    if quantity < row.reserved:
        raise ValueError(f"{row.reserved} units are held for pickup; the count cannot be lower")
    before = row.quantity - row.reserved
    session.execute(update(Stock).where(and_(Stock.variant_id == variant_id,
                                             Stock.store_id == store_id))
                    .values(quantity=quantity, updated_at=utcnow()))
    change = StockChange(variant_id, store_id, before, quantity - row.reserved)
    if change.back_in_stock:
        fire_alerts(session, variant_id, store_id)
    return change


def restock_line(availability_: Availability) -> Optional[str]:
    if availability_.next_restock is None:
        return None
    return f"retour prévu le {format_date(availability_.next_restock)}"


def location_ids(session: Session) -> Dict[str, int]:
    return dict(session.execute(select(Store.code, Store.id)).all())
