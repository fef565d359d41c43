"""The embedded demo shop: deterministic for a given seed and date.

`seed_demo_shop(engine, seed=42, today=date(...))` fills an empty, migrated database
with stores, catalog, stock, restocks, customers, consents (with their ledger) and
purchases. The same seed and date always give the same rows. `scale` mode adds
synthetic stores and SKUs for benchmarks (200 stores x 50,000 SKUs).

Rows are built as plain dicts with explicit ids and inserted in bulk through Core,
which keeps the 4-million-row benchmark shop within a minute or two.
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Engine

from bot.core import models as m
from bot.ops import demo_catalog as cat
from bot.ops.demo_customers import CustomersBuilder
from bot.web.media import page_path, picture_path

ONLINE_CODE = "WEB"

# Products with a fixed, documented situation (see README "Try it").
ALWAYS_OUT = "Hoka Speedgoat 6 femme"
ONLINE_ONLY = "Jura E8"
# (product, size, colour, store code, quantity): set after the random stock.
DOCUMENTED_STOCK = [
    ("Nike Pegasus 41 homme", "42", "noir", "LYS-PDI", 4),
    ("Nike Pegasus 41 homme", "42", "bleu", "LYS-PDI", 0),
    ("Nike Pegasus 41 homme", "42", "bleu", "LYS-CON", 3),
    ("Nike Pegasus 41 homme", "42", "bleu", "PAR-RIV", 6),
    ("Nike Pegasus 41 homme", "42", "bleu", "WEB", 0),
    ("Nike Pegasus 41 homme", "42", "noir", "LIL-CTR", 1),
]


@dataclass
class DemoShop:
    """All rows of the demo shop, table by table, ready for bulk insert."""

    stores: List[dict] = field(default_factory=list)
    store_hours: List[dict] = field(default_factory=list)
    store_closures: List[dict] = field(default_factory=list)
    products: List[dict] = field(default_factory=list)
    variants: List[dict] = field(default_factory=list)
    stock: List[dict] = field(default_factory=list)
    restocks: List[dict] = field(default_factory=list)
    customers: List[dict] = field(default_factory=list)
    consents: List[dict] = field(default_factory=list)
    consent_ledger: List[dict] = field(default_factory=list)
    purchases: List[dict] = field(default_factory=list)
    product_links: List[dict] = field(default_factory=list)

    TABLE_ORDER = (
        "stores", "store_hours", "store_closures", "products", "variants", "product_links",
        "stock", "restocks", "customers", "consents", "consent_ledger", "purchases",
    )


def ean13(body12: str) -> str:
    digits = [int(c) for c in body12]
    total = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return body12 + str((10 - total % 10) % 10)


def _t(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


class _Builder(CustomersBuilder):
    def __init__(self, seed: int, today: dt.date) -> None:
        self.rng = random.Random(f"comptoir-demo-{seed}")
        self.today = today
        self.shop = DemoShop()
        self.product_department: Dict[int, str] = {}
        self.variants_by_product: Dict[int, List[int]] = {}
        self.price_by_variant: Dict[int, int] = {}
        self.machines: Dict[int, str] = {}  # coffee machine product id -> accessory family

    # Stores ---------------------------------------------------------------------
    def add_store(self, code, name, address, city, postcode, lat, lon, sunday, kind="store") -> int:
        store_id = len(self.shop.stores) + 1
        self.shop.stores.append(dict(
            id=store_id, code=code, kind=kind, name=name, address=address, city=city,
            postcode=postcode, latitude=lat, longitude=lon, timezone="Europe/Paris",
            phone=f"+3319900{store_id:04d}" if kind == "store" else None,
        ))
        if kind == "online":
            return store_id
        late = self.rng.random() < 0.4
        for weekday in range(6):
            self.shop.store_hours.append(dict(
                store_id=store_id, weekday=weekday,
                opens_at=_t("09:30" if late else "10:00"), closes_at=_t("20:00" if late else "19:30"),
            ))
        if sunday:
            self.shop.store_hours.append(dict(
                store_id=store_id, weekday=6, opens_at=_t(sunday[0]), closes_at=_t(sunday[1])))
        for year in (self.today.year, self.today.year + 1):
            for month, day, reason in ((1, 1, "Jour de l'an"), (5, 1, "Fête du Travail"),
                                       (12, 25, "Noël")):
                self.shop.store_closures.append(dict(
                    store_id=store_id, day=dt.date(year, month, day), reason=reason))
        inventory_day = self.today + dt.timedelta(days=self.rng.randint(10, 120))
        if (inventory_day.month, inventory_day.day) not in ((1, 1), (5, 1), (12, 25)):
            self.shop.store_closures.append(dict(
                store_id=store_id, day=inventory_day, reason="Inventaire",
                opens_at=_t("14:00"), closes_at=_t("19:00")))
        return store_id

    def build_stores(self, extra: int) -> None:
        self.add_store(ONLINE_CODE, "Boutique en ligne", "Entrepôt de Saint-Quentin-Fallavier",
                       "Saint-Quentin-Fallavier", "38070", 45.6439, 5.1094, None, kind="online")
        for row in cat.STORES:
            self.add_store(*row)
        for index in range(extra):
            base = cat.STORES[index % len(cat.STORES)]
            number = index // len(cat.STORES) + 2
            self.add_store(
                f"{base[0]}-{number}", f"{base[3]} Zone commerciale {number}",
                f"{number} avenue du Commerce", base[3], base[4],
                round(base[5] + self.rng.uniform(-0.08, 0.08), 6),
                round(base[6] + self.rng.uniform(-0.08, 0.08), 6), None,
            )

    # Catalog --------------------------------------------------------------------
    def add_product(self, name, brand, department, category, price_eur, sizes, colours,
                    description) -> int:
        product_id = len(self.shop.products) + 1
        sku = f"P{product_id:06d}"
        price_cents = int(round(price_eur * 100))
        self.shop.products.append(dict(
            id=product_id, sku=sku, name=name, brand=brand, department=department,
            category=category, price_cents=price_cents, description=description, active=True,
            image_url=picture_path(sku), link=page_path(sku),  # drawn and served by the gateway
        ))
        self.product_department[product_id] = department
        ids = []
        for colour in colours or [None]:
            for size in sizes or [None]:
                variant_id = len(self.shop.variants) + 1
                self.shop.variants.append(dict(
                    id=variant_id, product_id=product_id, sku=f"{sku}-{len(ids) + 1:02d}",
                    ean=ean13(f"30{variant_id:010d}"), size=size, colour=colour,
                ))
                self.price_by_variant[variant_id] = price_cents
                ids.append(variant_id)
        self.variants_by_product[product_id] = ids
        return product_id

    def build_catalog(self) -> None:
        for brand, model, price, colours in cat.RUNNING_SHOES:
            for cut, sizes in (("homme", cat.SHOE_SIZES), ("femme", cat.WOMEN_SHOE_SIZES)):
                self.add_product(f"{brand} {model} {cut}", brand, "running", "chaussures de running",
                                 price, sizes, colours,
                                 f"Chaussure de running {model} pour {cut}, amorti et confort.")
        for kind, price, colours in cat.RUNNING_APPAREL:
            for brand in cat.RUNNING_APPAREL_BRANDS:
                for cut in ("homme", "femme"):
                    self.add_product(f"{brand} {kind} {cut}", brand, "running", "textile running",
                                     price, cat.APPAREL_SIZES, colours,
                                     f"{kind.capitalize()} {brand} pour {cut}, respirant.")
        for brand, name, price, sizes, colours in cat.RUNNING_ACCESSORIES:
            self.add_product(f"{brand} {name}", brand, "running", "accessoires running", price,
                             sizes, colours, f"{name} de {brand}.")
        for brand, name, price, sizes, colours in cat.SPORTS:
            self.add_product(f"{brand} {name}", brand, "sports", "sports et loisirs", price,
                             sizes, colours, f"{name} de {brand}.")
        for brand, name, price, sizes, colours in cat.CLOTHING:
            for cut in (cat.CLOTHING_CUTS if sizes else ["mixte"]):
                self.add_product(f"{brand} {name} {cut}", brand, "clothing", "vêtements", price,
                                 sizes, colours, f"{name} de {brand}, coupe {cut}.")
        parts: Dict[str, List[tuple]] = {}
        for brand, name, price, family in cat.COFFEE_MACHINES:
            machine = self.add_product(f"{brand} {name}", brand, "coffee", "machines à café",
                                       price, None, ["noir", "argent"] if price > 300 else ["noir"],
                                       f"Machine à café {brand} {name}.")
            self.machines[machine] = family
        for brand, name, price, family in cat.COFFEE_PARTS:
            part = self.add_product(f"{brand} {name}", brand, "coffee", "pièces et entretien",
                                    price, None, None, f"{name}, pour machines {brand}.")
            consumable = any(w in name for w in ("Filtre", "Détartrant", "Pastilles", "Cartouche",
                                                  "Kit", "Lubrifiant"))
            parts.setdefault(family, []).append((part, "consumable" if consumable else "part"))
        coffees: Dict[str, List[int]] = {"beans": [], "capsules": []}
        for brand, name, price in cat.COFFEE_CONSUMABLES:
            coffee = self.add_product(f"{brand} {name}", brand, "coffee", "cafés et capsules",
                                      price, None, None, f"{name} de {brand}.")
            coffees["capsules" if "Capsules" in name else "beans"].append(coffee)
        for machine, family in self.machines.items():
            linked = parts.get(family, []) + [
                (c, "consumable") for c in coffees["capsules" if family == "nespresso" else "beans"]]
            for product_id, kind in linked:
                self.shop.product_links.append(dict(product_id=machine, linked_product_id=product_id,
                                                    kind=kind))
        for brand, name, price, sizes in cat.BEAUTY:
            self.add_product(f"{brand} {name}", brand, "beauty", "beauté et soins", price, sizes,
                             None, f"{name} de {brand}.")
        for author, title in cat.BOOKS:
            for book_format, price in cat.BOOK_FORMATS:
                self.add_product(f"{title} ({book_format})", author, "books", "livres", price,
                                 None, None, f"{title}, de {author}, édition {book_format}.")
        for brand, name, price, kind in cat.HOME_GARDEN:
            self.add_product(f"{brand} {name}", brand, "home_garden",
                             "jardin" if kind == "garden" else "maison", price, None, None,
                             f"{name} de {brand}.")

    def build_scale_catalog(self, target_variants: int) -> None:
        """Synthetic editions of the catalog until `target_variants` SKUs exist."""
        base = list(self.shop.products)
        edition = 2
        while len(self.shop.variants) < target_variants:
            for product in base:
                if len(self.shop.variants) >= target_variants:
                    break
                sample = [self.shop.variants[i - 1] for i in self.variants_by_product[product["id"]]]
                sizes = sorted({v["size"] for v in sample if v["size"]}) or None
                colours = sorted({v["colour"] for v in sample if v["colour"]}) or None
                self.add_product(f"{product['name']} édition {edition}", product["brand"],
                                 product["department"], product["category"],
                                 product["price_cents"] / 100, sizes, colours,
                                 product["description"])
            edition += 1

    # Stock ------------------------------------------------------------------------
    def _quantity(self) -> int:
        roll = self.rng.random()
        if roll < 0.18:
            return 0
        if roll < 0.38:
            return self.rng.randint(1, 2)
        if roll < 0.85:
            return self.rng.randint(3, 10)
        return self.rng.randint(11, 30)

    def documented_stock(self) -> None:
        stores = {s["code"]: s["id"] for s in self.shop.stores}
        names = {p["name"]: p["id"] for p in self.shop.products}
        rows = {(r["variant_id"], r["store_id"]): r for r in self.shop.stock}
        now = dt.datetime.combine(self.today, dt.time(6, 0))
        for name, size, colour, code, quantity in DOCUMENTED_STOCK:
            variant_id = next(v["id"] for v in self.shop.variants
                              if v["product_id"] == names[name] and v["size"] == size
                              and v["colour"] == colour)
            key = (variant_id, stores[code])
            if key in rows:
                rows[key]["quantity"] = quantity
            else:
                row = dict(variant_id=variant_id, store_id=stores[code], quantity=quantity,
                           reserved=0, updated_at=now)
                self.shop.stock.append(row)
                rows[key] = row
            self.shop.restocks = [r for r in self.shop.restocks
                                  if (r["variant_id"], r["store_id"]) != key]
            if quantity == 0 and code != "WEB":
                self.shop.restocks.append(dict(variant_id=variant_id, store_id=stores[code],
                                               expected_on=self.today + dt.timedelta(days=6),
                                               quantity=4))

    def build_stock(self, carry_rate: float) -> None:
        now = dt.datetime.combine(self.today, dt.time(6, 0))
        online_id = 1
        store_ids = [s["id"] for s in self.shop.stores if s["kind"] == "store"]
        names = {p["id"]: p["name"] for p in self.shop.products}
        for product_id, variant_ids in self.variants_by_product.items():
            name = names[product_id]
            roll = self.rng.random()
            out_everywhere = name == ALWAYS_OUT or (name != ONLINE_ONLY and roll < 0.04)
            online_only = name == ONLINE_ONLY or (not out_everywhere and roll < 0.09)
            carried = [sid for sid in store_ids if self.rng.random() < carry_rate]
            if online_only:
                carried = []
            for variant_id in variant_ids:
                online_qty = 0 if out_everywhere else self.rng.randint(0, 40)
                if online_only:
                    online_qty = max(online_qty, 3)
                self.shop.stock.append(dict(variant_id=variant_id, store_id=online_id,
                                            quantity=online_qty, reserved=0, updated_at=now))
                for store_id in carried:
                    quantity = 0 if out_everywhere else self._quantity()
                    self.shop.stock.append(dict(variant_id=variant_id, store_id=store_id,
                                                quantity=quantity, reserved=0, updated_at=now))
                    if quantity == 0 and self.rng.random() < 0.5:
                        self.shop.restocks.append(dict(
                            variant_id=variant_id, store_id=store_id,
                            expected_on=self.today + dt.timedelta(days=self.rng.randint(2, 21)),
                            quantity=self.rng.randint(2, 10)))


def build_demo_shop(seed: int, today: dt.date, *, extra_stores: int = 0,
                    target_variants: int = 0, customers: int = 240,
                    carry_rate: float = 0.7) -> DemoShop:
    builder = _Builder(seed, today)
    builder.build_stores(extra_stores)
    builder.build_catalog()
    if target_variants:
        builder.build_scale_catalog(target_variants)
    builder.build_stock(carry_rate)
    builder.documented_stock()
    builder.build_customers(customers)
    return builder.shop


def is_seeded(engine: Engine) -> bool:
    with engine.connect() as connection:
        return bool(connection.execute(select(func.count()).select_from(m.Store.__table__)).scalar())


def _chunks(rows: List[dict], size: int) -> Iterable[List[dict]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def write_demo_shop(engine: Engine, shop: DemoShop,
                    progress: Optional[Callable[[str], None]] = None) -> Dict[str, int]:
    """Insert every table in one transaction; returns row counts per table."""
    counts = {}
    tables = m.Base.metadata.tables
    with engine.begin() as connection:
        for name in DemoShop.TABLE_ORDER:
            rows = getattr(shop, name)
            for chunk in _chunks(rows, 20000):
                connection.execute(insert(tables[name]), chunk)
            counts[name] = len(rows)
            if progress:
                progress(f"{name}: {len(rows)} rows")
        if engine.dialect.name == "postgresql":
            for name in DemoShop.TABLE_ORDER:
                if "id" in tables[name].c:
                    connection.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"))
    return counts


def seed_demo_shop(engine: Engine, seed: int, today: dt.date, *, scale: bool = False,
                   progress: Optional[Callable[[str], None]] = None) -> Optional[Dict[str, int]]:
    """Seed an empty database; returns None (and changes nothing) if already seeded."""
    if is_seeded(engine):
        return None
    if scale:
        shop = build_demo_shop(seed, today, extra_stores=200 - len(cat.STORES),
                               target_variants=50_000, carry_rate=0.4)
    else:
        shop = build_demo_shop(seed, today)
    return write_demo_shop(engine, shop, progress)
