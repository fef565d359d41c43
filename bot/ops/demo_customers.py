"""The demo shop's customers: loyalty members with birthdays spread over the year (the
documented ones on fixed days), their chats' consents with the ledger, and purchases in
their department. Part of the demo builder (`bot.ops.demo`), whose random generator,
clock, catalog and stores it uses, in the same order for the same seed."""
from __future__ import annotations

import datetime as dt
import random
import unicodedata
from typing import Any, Dict, List, Optional

from bot.core import models as m
from bot.ops import demo_catalog as cat

WORDING_VERSION = "2025-01"
DEMO_CUSTOMERS = [
    # first, last, department of their purchases, birthday offset from today (None: today)
    ("Camille", "Martin", "running", 0),
    ("Julien", "Moreau", "running", 95),
    ("Sophie", "Bernard", "coffee", 200),
    ("Lucas", "Petit", "books", 40),
]


def ascii_slug(value: str) -> str:
    plain = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum())


class CustomersBuilder:
    """Mixed into the demo builder, which sets these before building customers."""

    rng: random.Random
    today: dt.date
    shop: Any  # the DemoShop being built (bot.ops.demo)
    product_department: Dict[int, str]
    variants_by_product: Dict[int, List[int]]
    price_by_variant: Dict[int, int]

    def _birthday(self, index: int, total: int, offset: Optional[int]) -> dt.date:
        """Day and month only (the shop keeps no birth year); the year drawn spreads the
        days as before and keeps the rest of the shop the same for a seed."""
        year = self.rng.randint(1950, 2006)
        if offset is not None:
            day = self.today + dt.timedelta(days=offset)
            return dt.date(m.BIRTHDAY_NO_YEAR, day.month, day.day)
        day_of_year = (index * 365 // total + self.rng.randint(0, 2)) % 365
        return (dt.date(year, 1, 1) + dt.timedelta(days=day_of_year)).replace(year=m.BIRTHDAY_NO_YEAR)

    def build_customers(self, count: int) -> None:
        store_ids = [s["id"] for s in self.shop.stores if s["kind"] == "store"]
        products_by_department: Dict[str, List[int]] = {}
        for product_id, department in self.product_department.items():
            products_by_department.setdefault(department, []).append(product_id)
        used_names = set()
        for index in range(count):
            customer_id = index + 1
            if index < len(DEMO_CUSTOMERS):
                first, last, department, offset = DEMO_CUSTOMERS[index]
            else:
                first, last = self.rng.choice(cat.FIRST_NAMES), self.rng.choice(cat.LAST_NAMES)
                department = self.rng.choice(sorted(products_by_department))
                offset = None
            slug = f"{ascii_slug(first)}.{ascii_slug(last)}"
            email = f"{slug}@example.org" if slug not in used_names else f"{slug}{customer_id}@example.org"
            used_names.add(slug)
            member_roll = self.rng.random()
            is_demo = index < len(DEMO_CUSTOMERS)
            if is_demo:
                status = "none" if first == "Lucas" else "active"
            else:
                status = "active" if member_roll < 0.85 else "pending" if member_roll < 0.9 else "none"
            created = dt.datetime.combine(self.today - dt.timedelta(days=self.rng.randint(30, 2000)),
                                          dt.time(10, 0))
            birthday = None if (not is_demo and self.rng.random() < 0.08) else \
                self._birthday(index, count, offset)
            self.shop.customers.append(dict(
                id=customer_id,
                loyalty_card=None if status == "none" else f"8000{customer_id:08d}",
                loyalty_status=status,
                loyalty_points=0 if status == "none" else self.rng.randint(0, 2500),
                home_store_id=self.rng.choice(store_ids) if not is_demo else store_ids[2],
                first_name=first, last_name=last, email=email,
                phone=f"+3363998{customer_id:04d}",
                birthday=birthday,
                preferred_channel=self.rng.choice(["email", "sms", "telegram", "web"]),
                language="fr", created_at=created,
            ))
            self._consents(customer_id, created, everything=is_demo and first != "Sophie")
            self._purchases(customer_id, department, products_by_department, store_ids, created)
            if first == "Camille" and is_demo:
                self._runner_history(customer_id, store_ids[2])
            if first == "Sophie" and is_demo and self.machines:
                machine = min(self.machines)  # De'Longhi Magnifica S
                variant_id = self.variants_by_product[machine][0]
                self.shop.purchases.append(dict(
                    customer_id=customer_id, variant_id=variant_id, store_id=store_ids[2],
                    purchased_at=created + dt.timedelta(days=3), quantity=1,
                    amount_cents=self.price_by_variant[variant_id]))

    def _runner_history(self, customer_id: int, store_id: int) -> None:
        """Camille runs: shoes three months ago, a T-shirt and socks before that (no
        random draw, so the rest of the shop stays as it was)."""
        by_name = {p["name"]: p["id"] for p in self.shop.products}
        for name, days_ago in (("Nike Pegasus 41 femme", 100), ("Kiprun t-shirt de running femme", 250),
                               ("Kiprun Chaussettes de running x3", 400)):
            product_id = by_name.get(name)
            if product_id is None:
                continue
            variant_id = self.variants_by_product[product_id][0]
            self.shop.purchases.append(dict(
                customer_id=customer_id, variant_id=variant_id, store_id=store_id,
                purchased_at=dt.datetime.combine(self.today - dt.timedelta(days=days_ago), dt.time(17, 30)),
                quantity=1, amount_cents=self.price_by_variant[variant_id]))

    def _consents(self, customer_id: int, created: dt.datetime, everything: bool) -> None:
        for purpose in m.MESSAGE_PURPOSES:
            for channel in m.CONSENT_CHANNELS:
                if everything:
                    granted = channel in ("email", "telegram", "web")
                else:
                    if self.rng.random() < 0.5:
                        continue  # never asked: no row, no consent
                    granted = self.rng.random() < 0.6
                self.shop.consents.append(dict(
                    customer_id=customer_id, purpose=purpose, channel=channel, granted=granted,
                    wording_version=WORDING_VERSION, updated_at=created))
                self.shop.consent_ledger.append(dict(
                    customer_id=customer_id, purpose=purpose, channel=channel, old_state=None,
                    new_state=granted, recorded_at=created, source_channel="store",
                    source_conversation=None, wording_version=WORDING_VERSION))

    def _purchases(self, customer_id, department, products_by_department, store_ids, created):
        for _ in range(self.rng.randint(1, 8)):
            own = self.rng.random() < 0.75
            pool = products_by_department[department if own else
                                          self.rng.choice(sorted(products_by_department))]
            product_id = self.rng.choice(pool)
            variant_id = self.rng.choice(self.variants_by_product[product_id])
            span = max(1, (self.today - created.date()).days)
            when = created + dt.timedelta(days=self.rng.randint(0, span - 1),
                                          minutes=self.rng.randint(0, 480))
            quantity = 1 if self.rng.random() < 0.9 else 2
            self.shop.purchases.append(dict(
                customer_id=customer_id, variant_id=variant_id, store_id=self.rng.choice(store_ids),
                purchased_at=when, quantity=quantity,
                amount_cents=self.price_by_variant[variant_id] * quantity))
