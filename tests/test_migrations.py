"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""
import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import DatabaseError, IntegrityError

from bot.core.db import downgrade, make_engine, migrate
from bot.core.models import Base


def _schema_diff(url):
    engine = make_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    return diff


def _migrated(url):
    migrate(url)
    return make_engine(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request, sqlite_url):
    if request.param == "sqlite":
        return sqlite_url
    return request.getfixturevalue("postgres_url")


def test_migrations_match_the_models(any_url):
    migrate(any_url)
    assert _schema_diff(any_url) == []


def test_migrations_go_down_and_up_again(any_url):
    migrate(any_url)
    downgrade(any_url, "base")
    engine = make_engine(any_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate(any_url)
    migrate(any_url)  # idempotent
    assert _schema_diff(any_url) == []


def _ledger_row():
    return dict(customer_id=1, purpose="offers", channel="sms", old_state=None, new_state=True,
                recorded_at=dt.datetime(2026, 1, 1), source_channel="web",
                wording_version="2025-01")


def test_consent_ledger_refuses_updates_and_deletes_in_the_database(any_url):
    engine = _migrated(any_url)
    ledger = Base.metadata.tables["consent_ledger"]
    with engine.begin() as connection:
        connection.execute(insert(ledger), [_ledger_row()])
    for statement in ("UPDATE consent_ledger SET new_state = false",
                      "DELETE FROM consent_ledger"):
        with pytest.raises(DatabaseError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text(statement))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT new_state FROM consent_ledger")).scalar() in (1, True)
    engine.dispose()


def test_one_birthday_voucher_per_customer_and_year(any_url):
    engine = _migrated(any_url)
    tables = Base.metadata.tables
    with engine.begin() as connection:
        connection.execute(insert(tables["customers"]), [dict(id=1, loyalty_status="active",
                                                              language="fr",
                                                              created_at=dt.datetime(2026, 1, 1))])
    voucher = dict(code="ANNIV-1", customer_id=1, kind="birthday", year=2026,
                   issued_at=dt.datetime(2026, 3, 1), expires_on=dt.date(2026, 4, 1))
    with engine.begin() as connection:
        connection.execute(insert(tables["vouchers"]), [voucher])
    with pytest.raises(IntegrityError):
        with engine.begin() as connection:
            connection.execute(insert(tables["vouchers"]), [dict(voucher, code="ANNIV-2")])
    engine.dispose()


def test_stock_can_never_hold_more_units_than_it_has(any_url):
    engine = _migrated(any_url)
    tables = Base.metadata.tables
    with engine.begin() as connection:
        connection.execute(insert(tables["stores"]), [dict(id=1, code="X", kind="store", name="X",
                                                           address="", city="", postcode="",
                                                           timezone="Europe/Paris")])
        connection.execute(insert(tables["products"]), [dict(id=1, sku="P1", name="n", brand="b",
                                                             department="d", category="c",
                                                             price_cents=100, description="",
                                                             active=True)])
        connection.execute(insert(tables["variants"]), [dict(id=1, product_id=1, sku="P1-1",
                                                             ean="3000000000017")])
    row = dict(variant_id=1, store_id=1, quantity=1, reserved=2, updated_at=dt.datetime(2026, 1, 1))
    with pytest.raises(IntegrityError):
        with engine.begin() as connection:
            connection.execute(insert(tables["stock"]), [row])
    engine.dispose()


def test_upgrading_keeps_ledger_rows_and_its_append_only_guard(any_url):
    migrate(any_url, "0001")
    engine = make_engine(any_url)
    ledger = Base.metadata.tables["consent_ledger"]
    row = {k: v for k, v in _ledger_row().items()}
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO consent_ledger (customer_id, purpose, channel, old_state, new_state, "
            "recorded_at, source_channel, wording_version) VALUES (:customer_id, :purpose, "
            ":channel, :old_state, :new_state, :recorded_at, :source_channel, :wording_version)"),
            row)
    migrate(any_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM consent_ledger")).scalar() == 1
    with pytest.raises(DatabaseError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(ledger.delete())
    engine.dispose()


def test_upgrading_drops_the_year_of_every_stored_birthday(any_url):
    """Data minimisation: a birthday offer needs the day and the month only."""
    migrate(any_url, "0007")
    engine = make_engine(any_url)
    with engine.begin() as connection:
        for card, birthday in (("800000000101", dt.date(1985, 3, 12)),
                               ("800000000102", dt.date(1992, 2, 29)), ("800000000103", None)):
            connection.execute(text(
                "INSERT INTO customers (loyalty_card, loyalty_status, loyalty_points, birthday, "
                "language, created_at) VALUES (:card, 'active', 0, :birthday, 'fr', :now)"),
                {"card": card, "birthday": birthday, "now": dt.datetime(2026, 1, 1)})
    migrate(any_url)
    customers = Base.metadata.tables["customers"]
    with engine.connect() as connection:
        kept = dict(connection.execute(select(customers.c.loyalty_card, customers.c.birthday)).all())
    engine.dispose()
    assert kept == {"800000000101": dt.date(1904, 3, 12), "800000000102": dt.date(1904, 2, 29),
                    "800000000103": None}


def test_upgrading_to_product_feed_fields_keeps_every_stock_line(any_url):
    """0009 rebuilds the variants table on SQLite (an EAN becomes optional): the stock of the
    variants survives it, even when migrated in one go from before 0008's data update, and
    the foreign keys are enforced again afterwards."""
    migrate(any_url, "0007")
    engine = make_engine(any_url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO stores (id, code, kind, name, address, city, postcode, "
                                "timezone) VALUES (1, 'X', 'store', 'X', '', '', '', 'Europe/Paris')"))
        connection.execute(text("INSERT INTO products (id, sku, name, brand, department, category, "
                                "price_cents, description, active) VALUES "
                                "(1, 'P1', 'n', 'b', 'd', 'c', 100, '', :yes)"), {"yes": True})
        connection.execute(text("INSERT INTO variants (id, product_id, sku, ean) VALUES "
                                "(1, 1, 'P1-1', '3000000000017')"))
        connection.execute(text("INSERT INTO stock (variant_id, store_id, quantity, reserved, "
                                "updated_at) VALUES (1, 1, 5, 0, :now)"), {"now": dt.datetime(2026, 1, 1)})
        connection.execute(text(
            "INSERT INTO customers (loyalty_card, loyalty_status, loyalty_points, birthday, "
            "language, created_at) VALUES ('800000000101', 'active', 0, :day, 'fr', :now)"),
            {"day": dt.date(1985, 3, 12), "now": dt.datetime(2026, 1, 1)})
    engine.dispose()
    engine = _migrated(any_url)
    tables = Base.metadata.tables
    with engine.begin() as connection:
        assert connection.execute(select(tables["stock"].c.quantity)).scalars().all() == [5]
        connection.execute(insert(tables["variants"]), [dict(id=2, product_id=1, sku="P1-2", ean=None)])
    with pytest.raises(IntegrityError):
        with engine.begin() as connection:
            connection.execute(insert(tables["stock"]), [dict(variant_id=99, store_id=1, quantity=1,
                                                              reserved=0, updated_at=dt.datetime(2026, 1, 1))])
    engine.dispose()
