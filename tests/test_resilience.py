"""The shop database locked or down, as the action server meets it: customers get a
polite message, nothing is lost or doubled, and service comes back by itself when the
database returns. (Killed processes and a down action server: tests/test_e2e_platform.py.)
"""
import sqlite3
import threading
import time

from sqlalchemy import create_engine, func, select, text

from actions import common
from actions.stock import ActionCheckStock, ActionHoldItem
from bot.core.db import make_engine, make_session_factory, migrate
from bot.core.models import Reservation
from bot.ops.demo import seed_demo_shop
from tests.harness import POSTGRES_ADMIN_URL, SEED_DAY, run_action, stock_tracker


def unavailable(messages):
    """The action's only message is the polite "we cannot look right now"."""
    return [m.get("response") for m in messages] == ["utter_service_unavailable"]


def use_database(monkeypatch, url, busy_timeout):
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DB_BUSY_TIMEOUT", str(busy_timeout))
    common.reset_caches()


async def stock_context(sender):
    _, events = await run_action(ActionCheckStock(), stock_tracker("pegasus 41 homme 42 noir lyon part dieu", sender=sender))
    return {e["name"]: e["value"] for e in events}


def holds(url):
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        count = session.execute(select(func.count()).select_from(Reservation)).scalar_one()
    engine.dispose()
    return count


async def test_a_locked_sqlite_database_is_waited_for_then_reported_politely(shop_url, monkeypatch):
    use_database(monkeypatch, shop_url, busy_timeout=3)
    try:
        slots = await stock_context("locked-1")
        path = shop_url.split("///", 1)[1]
        before = holds(shop_url)

        # Locked for a moment (a stock import, a backup): the turn waits and succeeds.
        locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        locker.execute("BEGIN EXCLUSIVE")
        release = threading.Timer(0.8, lambda: locker.execute("ROLLBACK"))
        release.start()
        started = time.monotonic()
        messages, _ = await run_action(ActionHoldItem(), stock_tracker("gardez-le moi", slots=slots, sender="locked-1"))
        assert messages[0]["text"].startswith("C'est fait") and time.monotonic() - started >= 0.7
        release.join()
        locker.close()

        # Locked for longer than DB_BUSY_TIMEOUT: a polite message, no hold half-made.
        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        slots_2 = await stock_context("locked-2")  # reads still work (WAL)
        messages, events = await run_action(ActionHoldItem(), stock_tracker("gardez-le moi", slots=slots_2, sender="locked-2"))
        assert unavailable(messages) and events == []
        locker.execute("ROLLBACK")
        locker.close()

        # The lock is gone: the same request goes through, once.
        messages, _ = await run_action(ActionHoldItem(), stock_tracker("gardez-le moi", slots=slots_2, sender="locked-2"))
        assert messages[0]["text"].startswith("C'est fait")
        assert holds(shop_url) == before + 2
    finally:
        common.reset_caches()


async def test_postgres_down_then_back_without_a_restart(postgres_url, monkeypatch):
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    seed_demo_shop(engine, 42, SEED_DAY)
    engine.dispose()
    name = postgres_url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_ADMIN_URL, future=True, isolation_level="AUTOCOMMIT")
    use_database(monkeypatch, postgres_url, busy_timeout=2)
    try:
        slots = await stock_context("pg-down-1")
        assert slots["stock_variant"]
        with admin.connect() as connection:  # the database goes away
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :name"), {"name": name})
        messages, events = await run_action(ActionHoldItem(), stock_tracker("gardez-le moi", slots=slots, sender="pg-down-1"))
        assert unavailable(messages) and events == []
        messages, _ = await run_action(ActionCheckStock(), stock_tracker("pegasus 41 homme 42 noir lille", sender="pg-down-2"))
        assert unavailable(messages)
        with admin.connect() as connection:  # and comes back
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        messages, _ = await run_action(ActionHoldItem(), stock_tracker("gardez-le moi", slots=slots, sender="pg-down-1"))
        assert messages[0]["text"].startswith("C'est fait")  # same process, same pool
        assert holds(postgres_url) == 1
    finally:
        common.reset_caches()  # the pool lets go of the database before it is dropped
        admin.dispose()
