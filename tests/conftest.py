"""Shared fixtures: fresh databases (SQLite always, PostgreSQL when reachable), the
trained model, the fake Telegram, and the running stack the end-to-end tests share
(once per set-up). Helpers are in `tests/harness.py`."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.db import make_engine, migrate
from bot.core.settings import PROJECT_ROOT
from bot.ops.demo import seed_demo_shop
from tests.fake_telegram import FakeBotAPI
from tests.harness import (AGENT_PASSWORD, LEAKS, SEED_DAY, Stack, TELEGRAM_TEST_TOKEN, alive,
                           redis_server, temporary_postgres_database)


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
    with temporary_postgres_database() as url:
        yield url


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


@pytest.fixture(scope="session")
def fake_bot_api():
    """The local stand-in for Telegram's Bot API (tests/fake_telegram.py)."""
    server = FakeBotAPI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def telegram(backend):
    """A fresh stand-in for Telegram's Bot API for each set-up (tests/fake_telegram.py)."""

    server = FakeBotAPI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgres-redis-2-gateways-2-replicas"])
def backend(request, tmp_path_factory):
    """Every end-to-end test (tests/test_e2e_*.py) runs on both set-ups: the embedded one (SQLite, one Rasa)
    and the scale-out one (PostgreSQL shop database and tracker store, Redis lock store and
    shared state, two gateways behind a round-robin balancer (tests/proxy.py), two Rasa
    replicas). The second uses the machine's PostgreSQL and Redis (or a private
    redis-server) and is skipped, saying why, where they cannot be had."""
    if request.param == "sqlite":
        yield {}
        return
    with temporary_postgres_database() as shop_db, temporary_postgres_database() as trackers, \
            redis_server(tmp_path_factory.mktemp("redis")) as redis_url:
        yield {"DATABASE_URL": shop_db, "TRACKER_STORE_URL": trackers, "LOCK_STORE_URL": redis_url,
               "REDIS_URL": redis_url, "RASA_REPLICAS": "2", "GATEWAY_REPLICAS": "2"}


@pytest.fixture(scope="session")
def stack(trained_model, tmp_path_factory, telegram, backend):
    stack = Stack(tmp_path_factory.mktemp("stack"), {"TELEGRAM_BOT_TOKEN": TELEGRAM_TEST_TOKEN,
                                                     "TELEGRAM_API_URL": telegram.url,
                                                     "SUPPORT_HOURS": "lun-dim 00:00-00:00",
                                                     **backend})
    try:
        stack.wait_for_line(r"Comptoir is ready", timeout=600)
        yield stack
        # After every end-to-end test of this set-up: Ctrl-C stops each process by itself
        # (the gateway too, with this run's web chat and Socket.IO sessions), and the
        # whole run's log never held what a customer wrote or their personal data.
        pids = [stack.current_pid(name) for name in
                ["rasa", "actions", "gateway"] + [f"rasa-{i}" for i in range(2, stack.replicas + 1)]
                + [f"gateway-{i}" for i in range(2, stack.gateways + 1)]]
        stack.proc.send_signal(signal.SIGINT)
        assert stack.proc.wait(timeout=60) == 0
        assert "stopped." in stack.output
        assert "killed." not in stack.output
        assert not any(alive(pid) for pid in pids)
        logged = stack.output
        assert "horaires du magasin de lille" not in logged.lower()
        leaks = {kind: sorted(set(re.findall(pattern, logged))) for kind, pattern in LEAKS}
        assert {kind: found for kind, found in leaks.items() if found} == {}
    finally:
        if stack.proc.poll() is None:  # a failed test: still stop all three
            stack.proc.send_signal(signal.SIGINT)
            try:
                stack.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stack.proc.kill()
        stack.stop_proxy()


@pytest.fixture(scope="session")
def agent(stack):
    result = subprocess.run([sys.executable, "-m", "bot", "agents", "add", "claire", "--name", "Claire",
                             "--password-stdin"], input=AGENT_PASSWORD + "\n", text=True,
                            capture_output=True, cwd=PROJECT_ROOT, env=stack.env, timeout=120)
    assert result.returncode == 0, result.stderr
    return "claire"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed end-to-end test shows the stack's last log lines (they hold no personal
    data: the teardown checks that), so that a CI failure can be read from its report."""
    outcome = yield
    report = outcome.get_result()
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(stack, Stack):
        report.sections.append(("stack log (last 60 lines)", "\n".join(stack.lines[-60:])))
