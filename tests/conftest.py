"""Shared fixtures: fresh databases (SQLite always, PostgreSQL when reachable)."""
from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from pathlib import Path

import pytest

from bot.db import make_engine, migrate
from bot.demo import seed_demo_shop
from bot.settings import PROJECT_ROOT

SEED_DAY = dt.date(2026, 3, 12)
POSTGRES_ADMIN_URL = os.environ.get("COMPTOIR_TEST_POSTGRES_URL",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shop.db'}"


@pytest.fixture(scope="session")
def seeded_sqlite_url(tmp_path_factory) -> str:
    """A migrated demo shop seeded on SEED_DAY, shared read-only by many tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('shop') / 'shop.db'}"
    migrate(url)
    engine = make_engine(url)
    seed_demo_shop(engine, 42, SEED_DAY)
    engine.dispose()
    return url


@pytest.fixture
def postgres_url():
    """A brand-new PostgreSQL database, dropped afterwards; skipped without a server."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN_URL, future=True, isolation_level="AUTOCOMMIT")
    name = f"comptoir_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}; PostgreSQL path untested")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as connection:
        connection.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
            {"name": name})
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The current model, trained once if config, domain or data changed."""
    from bot.training import ensure_model

    return ensure_model(PROJECT_ROOT / "models", progress=lambda text: print(text))


@pytest.fixture
def shop_url(seeded_sqlite_url, tmp_path) -> str:
    """A private copy of the seeded demo shop, for tests that change it."""
    import shutil

    source = seeded_sqlite_url.split("///", 1)[1]
    target = tmp_path / "private-shop.db"
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


@pytest.fixture
def shop(shop_url):
    """A session factory on a private copy of the demo shop."""
    from bot.db import make_session_factory

    engine = make_engine(shop_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def shop_database(monkeypatch, shop_url):
    """Point the action server's code (actions/) at a private copy of the demo shop."""
    from actions import common

    monkeypatch.setenv("DATABASE_URL", shop_url)
    common.reset_caches()
    yield shop_url
    common.reset_caches()


TELEGRAM_TEST_TOKEN = "123456:TEST-token-for-the-fake-bot-api"


@pytest.fixture(scope="session")
def fake_bot_api():
    """The local stand-in for Telegram's Bot API (tests/fake_telegram.py)."""
    from tests.fake_telegram import FakeBotAPI

    server = FakeBotAPI().start()
    yield server
    server.stop()
