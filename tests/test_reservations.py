"""Holds for pickup: never oversold, cancellable by their owner only, expiring."""
import datetime as dt
import threading

import pytest
from sqlalchemy import insert, select

from bot.core.db import make_engine, make_session_factory, migrate
from bot.core.models import Base, Reservation, Stock
from bot.stock.reservations import HoldRefused, UNVERIFIED, VERIFIED, cancel, collect, expire_due, hold

NOW = dt.datetime(2026, 3, 12, 10, 0)


def tiny_shop(url, units=10):
    """One store, one product, `units` on hand."""
    migrate(url)
    # 30 connections at once: real contention, within the server's connection limit.
    engine = make_engine(url, pool_size=30, max_overflow=0, pool_timeout=60) \
        if url.startswith("postgresql") \
        else make_engine(url)
    tables = Base.metadata.tables
    with engine.begin() as connection:
        connection.execute(insert(tables["stores"]), [
            dict(id=1, code="WEB", kind="online", name="En ligne", address="", city="", postcode="",
                 timezone="Europe/Paris"),
            dict(id=2, code="LYS", kind="store", name="Lyon", address="", city="Lyon",
                 postcode="69003", timezone="Europe/Paris")])
        connection.execute(insert(tables["products"]), [dict(
            id=1, sku="P1", name="Pegasus", brand="Nike", department="running",
            category="chaussures", price_cents=14000, description="", active=True)])
        connection.execute(insert(tables["variants"]), [dict(id=1, product_id=1, sku="P1-01",
                                                             ean="3000000000017")])
        connection.execute(insert(tables["stock"]), [
            dict(variant_id=1, store_id=2, quantity=units, reserved=0, updated_at=NOW),
            dict(variant_id=1, store_id=1, quantity=units, reserved=0, updated_at=NOW)])
        connection.execute(insert(tables["customers"]), [
            dict(id=c, loyalty_status="none", created_at=NOW, language="fr") for c in range(1, 101)])
        connection.execute(insert(tables["chat_identities"]), [
            dict(id=i, channel="web", external_id=f"s{i}", last_seen_at=NOW, created_at=NOW)
            for i in range(1, 101)])
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            for table in ("chat_identities", "customers"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 101)")
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'holds.db'}" if request.param == "sqlite" \
        else request.getfixturevalue("postgres_url")
    engine = tiny_shop(url)
    yield engine
    engine.dispose()


def reserved(engine):
    with engine.connect() as connection:
        return connection.execute(select(Stock.reserved).where(Stock.store_id == 2)).scalar()


def race(engine, verified):
    """100 shoppers (verified members, or conversations nobody verified) hold one unit
    of the 10 at once; what each got."""
    factory = make_session_factory(engine)
    start = threading.Barrier(100)
    outcomes = []

    def shopper(number):
        start.wait()
        try:
            with factory.begin() as session:
                hold(session, 1, 2, 1, now=NOW, identity_id=number,
                     customer_id=number if verified else None)
            outcomes.append("held")
        except HoldRefused as refused:
            outcomes.append(refused.reason)

    threads = [threading.Thread(target=shopper, args=(i,)) for i in range(1, 101)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def test_100_members_racing_for_10_units_get_exactly_10_holds(engine):
    outcomes = race(engine, verified=True)
    assert outcomes.count("held") == 10
    assert outcomes.count("unavailable") == 90
    assert reserved(engine) == 10
    with make_session_factory(engine)() as session:
        codes = session.execute(select(Reservation.code)).scalars().all()
    assert len(codes) == len(set(codes)) == 10


def test_100_unverified_conversations_racing_get_half_the_units(engine):
    """Sender ids cost nothing: however many conversations a script opens, holds nobody
    verified take at most half of an item's units in a store."""
    outcomes = race(engine, verified=False)
    assert outcomes.count("held") == 5
    assert outcomes.count("unverified_share") == 95
    assert reserved(engine) == 5
    factory = make_session_factory(engine)
    with factory.begin() as session:  # the other half is still there for a member
        hold(session, 1, 2, 5, now=NOW, customer_id=1)
    assert reserved(engine) == 10


def test_quantity_limits_and_online_location_are_refused(engine):
    factory = make_session_factory(engine)
    for quantity, store_id, reason in ((0, 2, "quantity"), (6, 2, "quantity"), (-1, 2, "quantity"),
                                       (1, 1, "online"), (5, 2, None), (5, 2, None),
                                       (1, 2, "unavailable")):
        customer = 1 if reason is None and reserved(engine) else 2  # 5 units each at most
        with factory.begin() as session:
            if reason is None:
                hold(session, 1, store_id, quantity, now=NOW, customer_id=customer)
                continue
            with pytest.raises(HoldRefused) as refused:
                hold(session, 1, store_id, quantity, now=NOW, identity_id=3)
            assert refused.value.reason == reason
    assert reserved(engine) == 10


def _try(factory, quantity=1, **holder):
    try:
        with factory.begin() as session:
            hold(session, 1, 2, quantity, now=NOW, **holder)
        return "held"
    except HoldRefused as refused:
        return refused.reason


def test_an_unverified_conversation_holds_two_articles_at_most(engine):
    factory = make_session_factory(engine)
    assert _try(factory, 3, identity_id=1) == "units_per_article"
    assert [_try(factory, identity_id=1) for _ in range(3)] == ["held", "held", "open_holds"]
    assert _try(factory, identity_id=2) == "held"  # another conversation has its own allowance
    assert reserved(engine) == 3


def test_a_verified_customer_holds_five_across_all_their_chats(engine):
    factory = make_session_factory(engine)
    outcomes = [_try(factory, identity_id=identity, customer_id=1) for identity in (1, 2, 1, 2, 1, 2)]
    assert outcomes == ["held"] * VERIFIED.open_holds + ["open_holds"]
    assert _try(factory, identity_id=3, customer_id=2) == "held"
    assert reserved(engine) == 6


def test_holding_and_cancelling_in_a_loop_stops_for_the_day(engine):
    factory = make_session_factory(engine)
    outcomes = []
    for _ in range(UNVERIFIED.created_per_day + 1):
        outcomes.append(_try(factory, identity_id=1))
        with factory.begin() as session:
            cancel(session, identity_id=1)
    assert outcomes == ["held"] * UNVERIFIED.created_per_day + ["created_per_day"]
    assert reserved(engine) == 0
    with factory.begin() as session:  # a day later the allowance is back
        hold(session, 1, 2, 1, now=NOW + dt.timedelta(days=1, minutes=1), identity_id=1)


def test_only_the_owner_can_cancel_and_only_once(engine):
    factory = make_session_factory(engine)
    with factory.begin() as session:
        code = hold(session, 1, 2, 2, now=NOW, identity_id=1).code
    with factory.begin() as session:
        assert cancel(session, identity_id=2) == []
        assert cancel(session, identity_id=2, code=code) == []
    assert reserved(engine) == 2
    with factory.begin() as session:
        assert [r.code for r in cancel(session, identity_id=1, code=code.lower())] == [code]
    with factory.begin() as session:
        assert cancel(session, identity_id=1) == []
    assert reserved(engine) == 0


def test_holds_expire_by_themselves_and_free_the_stock_once(engine):
    factory = make_session_factory(engine)
    with factory.begin() as session:
        hold(session, 1, 2, 3, now=NOW, hours=48, customer_id=1)
        hold(session, 1, 2, 1, now=NOW + dt.timedelta(hours=10), hours=48, identity_id=2)
    assert expire_due(factory, NOW + dt.timedelta(hours=47)) == 0
    assert expire_due(factory, NOW + dt.timedelta(hours=48)) == 1
    assert expire_due(factory, NOW + dt.timedelta(hours=48)) == 0
    assert reserved(engine) == 1
    with factory() as session:
        statuses = session.execute(select(Reservation.status).order_by(Reservation.id)).scalars().all()
    assert statuses == ["expired", "active"]


def test_a_hold_picked_up_leaves_the_stock_once_and_only_in_its_store(engine):
    factory = make_session_factory(engine)
    with factory.begin() as session:
        code = hold(session, 1, 2, 2, now=NOW, identity_id=1).code
    assert reserved(engine) == 2
    with factory.begin() as session:
        assert collect(session, code, "WEB") == "other_store"
        assert collect(session, "ZZZZZZ", "LYS") == "unknown"
        assert collect(session, code.lower(), "lys") == "collected"
        assert collect(session, code, "LYS") == "already"
    with engine.connect() as connection:
        on_hand, held = connection.execute(select(Stock.quantity, Stock.reserved).where(
            Stock.store_id == 2)).one()
        status = connection.execute(select(Reservation.status)).scalar_one()
    assert (on_hand, held, status) == (8, 0, "collected")
