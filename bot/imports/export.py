"""`python -m bot seed --export DIR`: the shop database written as the files the imports
read, so that a retailer sees the formats filled in, and so that importing them into an
empty database gives the same shop (tests/test_shop_export.py checks it).

    stores.tsv      the business-profile sheet (the online warehouse labelled `online`)
    products.tsv    the product feed (one line per variant, grouped by item_group_id)
    inventory.tsv   the local inventory feed (every stock line)
    customers.csv   loyalty members (those with a card), birthdays as --MM-DD
    consents.csv    their consents, in their current state

Not carried (no standard column for them): closure reasons, parts and consumables
links, restock dates, purchases, holds, vouchers, the consent ledger's history and
customers without a loyalty card.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.core.models import (Consent, Customer, Product, Stock, Store, StoreClosure, StoreHours,
                             Variant)
from bot.customers.birthday import iso_day_month
from bot.imports.stores import DAYS

STORE_COLUMNS = ("Store code", "Business name", "Address line 1", "Locality", "Postal code",
                 "Latitude", "Longitude", "Primary phone") + DAYS + ("Special hours", "Labels")
PRODUCT_COLUMNS = ("id", "item_group_id", "title", "description", "brand", "gtin", "color", "size",
                   "product_type", "price", "image_link", "link", "availability")
INVENTORY_COLUMNS = ("store_code", "id", "quantity", "availability")
CUSTOMER_COLUMNS = ("card", "first_name", "last_name", "email", "phone", "home_store",
                    "preferred_channel", "birthday", "status", "points")
CONSENT_COLUMNS = ("card", "purpose", "channel", "state", "when", "source")
EXPORT_SOURCE = "export Comptoir"


def _write(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t" if path.suffix == ".tsv" else ",",
                            lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if value is None else value for value in row])
            count += 1
    return count


def _hm(value) -> str:
    return value.strftime("%H:%M")


def _store_rows(session: Session) -> Iterable[List[object]]:
    hours: Dict[int, Dict[int, List[str]]] = {}
    for h in session.execute(select(StoreHours).order_by(StoreHours.opens_at)).scalars():
        hours.setdefault(h.store_id, {}).setdefault(h.weekday, []).append(f"{_hm(h.opens_at)}-{_hm(h.closes_at)}")
    special: Dict[int, List[str]] = {}
    for c in session.execute(select(StoreClosure).order_by(StoreClosure.day)).scalars():
        span = f"{_hm(c.opens_at)}-{_hm(c.closes_at)}" if c.opens_at and c.closes_at else "x"
        special.setdefault(c.store_id, []).append(f"{c.day.isoformat()}: {span}")
    for store in session.execute(select(Store).order_by(Store.id)).scalars():
        days = hours.get(store.id, {})
        yield [store.code, store.name, store.address, store.city, store.postcode, store.latitude,
               store.longitude, store.phone] + [",".join(days.get(d, [])) or "x" for d in range(7)] + [
               ", ".join(special.get(store.id, [])), "online" if store.kind == "online" else ""]


def _product_rows(session: Session) -> Iterable[List[object]]:
    online = set(session.execute(select(Stock.variant_id).join(Store, Store.id == Stock.store_id).where(
        Store.kind == "online", Stock.quantity > Stock.reserved)).scalars())
    query = (select(Product, Variant).join(Variant, Variant.product_id == Product.id)
             .where(Product.active.is_(True)).order_by(Product.id, Variant.id))
    for product, variant in session.execute(query):
        euros, cents = divmod(product.price_cents, 100)
        yield [variant.sku, product.sku, product.name, product.description, product.brand,
               variant.ean, variant.colour, variant.size, f"{product.department} > {product.category}",
               f"{euros}.{cents:02d} EUR", product.image_url, product.link,
               "in_stock" if variant.id in online else "out_of_stock"]


def _inventory_rows(session: Session) -> Iterable[List[object]]:
    query = (select(Store.code, Variant.sku, Stock.quantity)
             .join(Store, Store.id == Stock.store_id).join(Variant, Variant.id == Stock.variant_id)
             .join(Product, Product.id == Variant.product_id).where(Product.active.is_(True))
             .order_by(Store.id, Variant.id))
    for code, sku, quantity in session.execute(query):
        yield [code, sku, quantity, "in_stock" if quantity else "out_of_stock"]


def _customer_rows(session: Session) -> Iterable[List[object]]:
    stores = dict(session.execute(select(Store.id, Store.code)).all())
    members = select(Customer).where(Customer.loyalty_card.is_not(None), Customer.erased_at.is_(None))
    for c in session.execute(members.order_by(Customer.id)).scalars():
        yield [c.loyalty_card, c.first_name, c.last_name, c.email, c.phone, stores.get(c.home_store_id),
               c.preferred_channel, iso_day_month(c.birthday) if c.birthday else None,
               c.loyalty_status, c.loyalty_points]


def _consent_rows(session: Session) -> Iterable[List[object]]:
    query = (select(Customer.loyalty_card, Consent).join(Customer, Customer.id == Consent.customer_id)
             .where(Customer.loyalty_card.is_not(None), Customer.erased_at.is_(None))
             .order_by(Customer.id, Consent.purpose, Consent.channel))
    for card, consent in session.execute(query):
        yield [card, consent.purpose, consent.channel, "granted" if consent.granted else "withdrawn",
               consent.updated_at.isoformat(timespec="minutes"), EXPORT_SOURCE]


FILES = (("stores.tsv", STORE_COLUMNS, _store_rows), ("products.tsv", PRODUCT_COLUMNS, _product_rows),
         ("inventory.tsv", INVENTORY_COLUMNS, _inventory_rows),
         ("customers.csv", CUSTOMER_COLUMNS, _customer_rows),
         ("consents.csv", CONSENT_COLUMNS, _consent_rows))
IMPORT_ORDER = (("stores", "stores.tsv"), ("products", "products.tsv"), ("inventory", "inventory.tsv"),
                ("customers", "customers.csv"), ("consents", "consents.csv"))


def export_shop(factory: sessionmaker, directory: Path) -> Dict[str, int]:
    """Write the five files into `directory`; {file name: rows written}."""
    directory.mkdir(parents=True, exist_ok=True)
    with factory() as session:
        return {name: _write(directory / name, columns, rows(session)) for name, columns, rows in FILES}
