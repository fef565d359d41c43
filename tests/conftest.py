"""Shared fixtures: fresh databases (SQLite always, PostgreSQL when reachable)."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from bot.core.db import make_engine, migrate
from bot.core.settings import PROJECT_ROOT
from bot.ops.demo import seed_demo_shop

SEED_DAY = dt.date(2026, 3, 12)
POSTGRES_ADMIN_URL = os.environ.get("COMPTOIR_TEST_POSTGRES_URL",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (Rasa replicas take RASA_PORT + i)."""
    for _ in range(100):
        first = free_port()
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports")


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


@contextlib.contextmanager
def temporary_postgres_database():
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
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": name})
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def postgres_url():
    with temporary_postgres_database() as url:
        yield url


@contextlib.contextmanager
def redis_server(tmp_path: Path):
    """Redis for the lock store: the one at COMPTOIR_TEST_REDIS_URL (default local 6379)
    if it answers, else a private redis-server started here; skipped if neither works."""
    import shutil
    import subprocess

    import redis

    url = os.environ.get("COMPTOIR_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
        yield url
        return
    except redis.RedisError:
        pass
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(f"Redis not reachable at {url} and no redis-server to start; Redis path untested")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(50):
            try:
                redis.Redis.from_url(url, socket_timeout=1).ping()
                break
            except redis.RedisError:
                time.sleep(0.1)
        else:
            pytest.skip("redis-server did not start; Redis path untested")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The current model, trained once if config, domain or data changed."""
    from bot.ops.training import ensure_model

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
    from bot.core.db import make_session_factory

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
