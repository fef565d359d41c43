"""The demo shop: deterministic, big enough, and with the documented situations."""
from collections import Counter

import pytest
from sqlalchemy import func, select

from bot.core import models as m
from bot.core.db import make_engine, make_session_factory, migrate
from bot.ops.demo import ALWAYS_OUT, ONLINE_ONLY, build_demo_shop, seed_demo_shop
from tests.harness import SEED_DAY


@pytest.fixture(scope="module")
def shop():
    return build_demo_shop(42, SEED_DAY)


def test_same_seed_and_date_give_the_same_shop(shop):
    again = build_demo_shop(42, SEED_DAY)
    for table in shop.TABLE_ORDER:
        assert getattr(again, table) == getattr(shop, table), table


def test_another_seed_gives_another_shop(shop):
    other = build_demo_shop(7, SEED_DAY)
    assert other.customers != shop.customers
    assert other.stock != shop.stock


def test_the_shop_is_as_big_as_promised(shop):
    stores = [s for s in shop.stores if s["kind"] == "store"]
    assert len(stores) >= 20
    assert len(shop.products) >= 500
    assert len(shop.customers) >= 200
    assert {p["department"] for p in shop.products} >= {
        "running", "sports", "clothing", "coffee", "beauty", "books", "home_garden"}
    assert all(s["latitude"] and s["longitude"] for s in shop.stores)
    # every store opens on weekdays, some on Sundays
    weekdays_by_store = Counter(h["store_id"] for h in shop.store_hours)
    assert all(weekdays_by_store[s["id"]] >= 6 for s in stores)
    assert any(h["weekday"] == 6 for h in shop.store_hours)


def test_eans_are_valid_ean13(shop):
    for variant in shop.variants:
        digits = [int(c) for c in variant["ean"]]
        assert len(digits) == 13
        assert sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def _stock_by_product(shop, name):
    product_id = next(p["id"] for p in shop.products if p["name"] == name)
    variants = {v["id"] for v in shop.variants if v["product_id"] == product_id}
    return [s for s in shop.stock if s["variant_id"] in variants]


def test_documented_out_of_stock_and_online_only_products(shop):
    out = _stock_by_product(shop, ALWAYS_OUT)
    assert out and all(s["quantity"] == 0 for s in out)
    online = _stock_by_product(shop, ONLINE_ONLY)
    assert online and all(s["store_id"] == 1 for s in online)
    assert all(s["quantity"] > 0 for s in online)


def test_a_demo_member_has_a_birthday_on_the_seeding_day(shop):
    camille = shop.customers[0]
    assert (camille["first_name"], camille["last_name"]) == ("Camille", "Martin")
    assert (camille["birthday"].month, camille["birthday"].day) == (SEED_DAY.month, SEED_DAY.day)
    assert camille["loyalty_status"] == "active"


def test_birthdays_are_spread_over_the_year(shop):
    months = Counter(c["birthday"].month for c in shop.customers if c["birthday"])
    assert len(months) == 12
    assert min(months.values()) >= 10


def test_every_consent_has_its_ledger_entry(shop):
    consents = {(c["customer_id"], c["purpose"], c["channel"], c["granted"]) for c in shop.consents}
    ledger = {(e["customer_id"], e["purpose"], e["channel"], e["new_state"])
              for e in shop.consent_ledger}
    assert consents == ledger
    assert all(c["purpose"] in m.CONSENT_PURPOSES and c["channel"] in m.CONSENT_CHANNELS
               for c in shop.consents)


def test_purchases_are_in_the_past_and_priced(shop):
    assert shop.purchases
    assert all(p["purchased_at"].date() <= SEED_DAY for p in shop.purchases)
    assert all(p["amount_cents"] > 0 for p in shop.purchases)


def test_seeding_writes_once_and_never_duplicates(seeded_sqlite_url):
    engine = make_engine(seeded_sqlite_url)
    assert seed_demo_shop(engine, 42, SEED_DAY) is None
    factory = make_session_factory(engine)
    with factory() as session:
        assert session.execute(select(func.count()).select_from(m.Product)).scalar() >= 500
        camille = session.execute(
            select(m.Customer).where(m.Customer.email == "camille.martin@example.org")).scalar_one()
        assert camille.birthday.replace(year=SEED_DAY.year) == SEED_DAY
    engine.dispose()


def test_scale_mode_adds_stores_and_skus():
    shop = build_demo_shop(42, SEED_DAY, extra_stores=10, target_variants=4000, customers=10,
                           carry_rate=0.4)
    assert len([s for s in shop.stores if s["kind"] == "store"]) == 34
    assert 4000 <= len(shop.variants) < 4100  # whole products: a few SKUs over
    assert len({v["sku"] for v in shop.variants}) == len(shop.variants)
    assert len({v["ean"] for v in shop.variants}) == len(shop.variants)


def test_demo_shop_loads_into_postgresql(postgres_url):
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    counts = seed_demo_shop(engine, 42, SEED_DAY)
    assert counts["products"] >= 500
    factory = make_session_factory(engine)
    with factory.begin() as session:  # sequences follow the explicit ids
        session.add(m.Store(code="NEW", name="Nouveau", city="Caen", postcode="14000"))
    with factory() as session:
        assert session.execute(select(func.max(m.Store.id))).scalar() == counts["stores"] + 1
    engine.dispose()


def test_cli_seed_reset_reseeds_for_another_date(tmp_path, monkeypatch, capsys):
    from bot.ops.cli import main

    monkeypatch.setenv("COMPTOIR_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["seed", "--date", "2026-03-12"]) == 0
    assert main(["seed"]) == 0
    assert "already has data" in capsys.readouterr().out
    assert main(["seed", "--reset", "--date", "2026-07-01"]) == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with make_session_factory(engine)() as session:
        camille = session.get(m.Customer, 1)
        assert (camille.birthday.month, camille.birthday.day) == (7, 1)
    engine.dispose()
