"""The test harness: what more than one test module uses, in one place.

- ports, a throwaway PostgreSQL database, a Redis server (skipped, saying why, where
  they cannot be had);
- `Stack`: `python -m bot up` for real in a temporary folder (the three processes, free
  ports), with helpers to talk to it over REST, socket.io, the console and the outbox;
- small readers of what the customer sees (texts, the codes in the mail outbox).

Fixtures live in `conftest.py`; test modules import helpers from here, never from one
another.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from bot.core.models import Stock, Store, Variant
from bot.core.settings import PROJECT_ROOT

SEED_DAY = dt.date(2026, 3, 12)
POSTGRES_ADMIN_URL = os.environ.get("COMPTOIR_TEST_POSTGRES_URL",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")
TELEGRAM_TEST_TOKEN = "123456:TEST-token-for-the-fake-bot-api"
SECRET = "s" * 40  # the identity secret of the desk tests
# What must never reach a log: emails, phones, card numbers, voucher codes, export links.
LEAKS = (("email", r"[\w.+-]+@(?:example\.org|gmail\.com|orange\.fr)"),
         ("phone", r"(?:\+33|\b0)[67](?:[ .]?\d{2}){4}\b"),
         ("card", r"\b8000000\d{5}\b"),
         ("voucher", r"ANNIV-[A-Z0-9]{4}-[A-Z0-9]{4}"),
         ("export link", r"/exports/[A-Za-z0-9_-]{12,}"))


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


def service_missing(reason: str) -> None:
    """Skip, saying why, on a machine without the service; under CI=true (our machines and
    CI have PostgreSQL and Redis) a missing service fails the test instead of hiding it."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"{reason} (CI=true: this service is expected here)")
    pytest.skip(reason)


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
        service_missing(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}; PostgreSQL path untested")
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


@contextlib.contextmanager
def redis_server(tmp_path: Path):
    """Redis for the lock store: the one at COMPTOIR_TEST_REDIS_URL (default local 6379)
    if it answers, else a private redis-server started here; skipped if neither works."""
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
        service_missing(f"Redis not reachable at {url} and no redis-server to start; Redis path untested")
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
            service_missing("redis-server did not start; Redis path untested")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def last_code(outbox, to):
    files = sorted(outbox.glob("*.txt"))
    for path in reversed(files):
        content = path.read_text()
        if f"To: {to}" in content:
            return re.search(r"\b(\d{6})\b", content.split("\n\n", 1)[1]).group(1)
    raise AssertionError(f"no message to {to} in {outbox}")


def stock_tracker(text, entities=(), slots=None, metadata=None, sender="web-session-1"):
    """A tracker as Rasa sends it for a stock question in the web chat."""
    return Tracker.from_dict({
        "sender_id": sender, "slots": slots or {},
        "latest_message": {"text": text, "intent": {"name": "check_stock"},
                           "entities": [{"entity": k, "value": v} for k, v in entities],
                           "metadata": metadata or {"comptoir_channel": "web"}}})


async def run_action(action, track):
    """Run one of our rasa_sdk actions as the action server does: (messages, events)."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, track, {})
    return dispatcher.messages, events


def stock_quantity(shop, sku, code):
    """On-hand units of a variant (by SKU) at a store (by code), as the database has them."""
    with shop() as session:
        return session.execute(
            select(Stock.quantity).join(Variant, Variant.id == Stock.variant_id)
            .join(Store, Store.id == Stock.store_id)
            .where(Variant.sku == sku, Store.code == code)).scalar()


def table_file(path: Path, header: str, rows) -> Path:
    """A retailer's file as the imports read it: a header line, then the rows."""
    path.write_text("\n".join((header,) + tuple(rows)) + "\n", encoding="utf-8")
    return path


STOCK_TOKEN = "integration-stock-token"
TILL_TOKEN = "integration-till-token"


class Stack:
    def __init__(self, tmp_path, extra_env=None):
        extra_env = extra_env or {}
        replicas = int(extra_env.get("RASA_REPLICAS", 1))
        self.gateways = int(extra_env.get("GATEWAY_REPLICAS", 1))
        self.ports = {"GATEWAY_PORT": free_ports(self.gateways), "RASA_PORT": free_ports(replicas),
                      "ACTION_PORT": free_port()}
        inherited = {k: v for k, v in os.environ.items() if k not in (
            "DATABASE_URL", "TRACKER_STORE_URL", "LOCK_STORE_URL", "REDIS_URL", "RASA_TOKEN",
            "RASA_REPLICAS", "GATEWAY_REPLICAS", "PUBLIC_URL")}
        self.gateway_urls = [f"http://127.0.0.1:{self.ports['GATEWAY_PORT'] + i}"
                             for i in range(self.gateways)]
        self.proxy = None
        if self.gateways > 1:
            # Several gateways: everything goes through a round-robin balancer, as in a shop.
            port = free_port()
            self.proxy = subprocess.Popen([sys.executable, "-m", "tests.proxy", "--port", str(port),
                                           *self.gateway_urls], cwd=PROJECT_ROOT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            extra_env = {"PUBLIC_URL": f"http://127.0.0.1:{port}", **extra_env}
        self.env = {**inherited, **{k: str(v) for k, v in self.ports.items()},
                    "COMPTOIR_VAR_DIR": str(tmp_path / "var"),
                    "COMPTOIR_MODELS_DIR": str(PROJECT_ROOT / "models"),
                    "STOCK_API_TOKEN": STOCK_TOKEN, "TILL_API_TOKEN": TILL_TOKEN, **extra_env}
        self.url = self.env.get("PUBLIC_URL", self.gateway_urls[0])
        self.replicas = replicas
        var = Path(self.env["COMPTOIR_VAR_DIR"])
        self.shop_url = self.env.get("DATABASE_URL", f"sqlite:///{var / 'shop.db'}")
        self.trackers_url = self.env.get("TRACKER_STORE_URL", f"sqlite:///{var / 'trackers.db'}")
        self.lines = []
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "up"], cwd=PROJECT_ROOT,
                                     env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def stop_proxy(self):
        if self.proxy is not None and self.proxy.poll() is None:
            self.proxy.terminate()
            self.proxy.wait(timeout=30)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    @property
    def output(self):
        return "\n".join(self.lines)

    def wait_for_line(self, pattern, timeout=300, after=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                match = re.search(pattern, line)
                if match:
                    return match
            assert self.proc.poll() is None, f"bot up exited early:\n{self.output[-5000:]}"
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r} in:\n{self.output[-5000:]}")

    def pid(self, name, after=0):
        return int(self.wait_for_line(rf"{name} started \(pid (\d+)\)", after=after).group(1))

    def current_pid(self, name):
        """The pid of the latest start of `name` (after restarts)."""
        return self.pid(name, after=max(i for i, line in enumerate(self.lines) if f"{name} started" in line))

    def tracker_url(self, sender):
        """Rasa's HTTP API for this conversation's tracker (the replicas share the store)."""
        token = (Path(self.env["COMPTOIR_VAR_DIR"]) / "rasa_token").read_text().strip()
        return f"http://127.0.0.1:{self.ports['RASA_PORT']}/conversations/{sender}/tracker?token={token}"

    def post(self, path, body, headers=None):
        request = urllib.request.Request(
            f"{self.url}{path}", method="POST",
            data=body if isinstance(body, bytes) else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def say(self, sender, message, metadata=None):
        body = {"sender": sender, "message": message}
        if metadata:
            body["metadata"] = metadata
        status, replies = self.post("/webhooks/rest/webhook", body)
        assert status == 200
        return replies

    def health(self):
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())
        except urllib.error.URLError as error:  # not listening (yet)
            return 0, {"error": str(error.reason)}

    def wait_healthy(self, timeout=180):
        """Until every component is up, every Rasa replica included."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.health()
            if status == 200 and body["components"]["rasa"].get("replicas_up") == f"{self.replicas}/{self.replicas}":
                return body
            time.sleep(0.5)
        raise AssertionError(f"not healthy: {body}\n{self.output[-3000:]}")


def texts(replies):
    return " ".join(r.get("text") or "" for r in replies)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


TELEGRAM_USER = 777001


def sent_to(telegram, user, method="sendMessage"):
    return lambda c: c["method"] == method and int(c.get("chat_id", 0)) == user


def require_chromium() -> Path:
    """Skip (saying why) without Debian's chromium; else the folder for screenshots."""
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian's chromium is not installed (scripts/ensure-chromium); browser test skipped")
    shots = PROJECT_ROOT / "results"
    shots.mkdir(exist_ok=True)
    return shots


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"])


AGENT_PASSWORD = "console password 2026"


async def console_session(stack, username, url=None):
    """An agent logged in to the console (through the stack's front door, or at `url`)."""
    import aiohttp

    # unsafe=True: aiohttp keeps no cookies for IP addresses otherwise.
    session = aiohttp.ClientSession(base_url=url or stack.url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = await (await session.get("/console")).text()
    form_token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = await session.post("/console/login", data={
        "csrf": form_token, "username": username, "password": AGENT_PASSWORD})
    assert response.status == 200
    return session, (await response.json())["csrf"]


async def web_chat(stack, session_id=None, url=None):
    """A widget-like socket.io client (through the stack's front door, or at `url`):
    (client, confirmed session id, event queue)."""
    import socketio

    events = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False, request_timeout=30)
    for name in ("session_confirm", "bot_uttered", "history"):
        client.on(name, lambda data, name=name: events.put_nowait((name, data)))
    url = url or stack.url
    await client.connect(url, transports=["polling"], headers={"Origin": url})
    await client.emit("session_request", {"session_id": session_id} if session_id else {})
    kind, confirmed = await asyncio.wait_for(events.get(), 10)
    assert kind == "session_confirm"
    return client, confirmed, events


async def next_of(events, kind, timeout=30):
    while True:
        name, data = await asyncio.wait_for(events.get(), timeout)
        if name == kind:
            return data


async def web_turn(client, session_id, events, message):
    """Send a message; the text of every bot_uttered of the answer (until a quiet second)."""
    await client.emit("user_uttered", {"message": message, "session_id": session_id})
    said = [(await next_of(events, "bot_uttered")).get("text") or ""]
    with contextlib.suppress(asyncio.TimeoutError):
        while True:
            said.append((await next_of(events, "bot_uttered", timeout=1.5)).get("text") or "")
    return "\n".join(said)


async def stack_history(stack, session_id):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(stack.tracker_url(session_id)) as response:
            events = (await response.json())["events"]
    return [{"text": e.get("text")} for e in events if e["event"] == "bot"]


def outbox_code(stack, to, timeout=15):
    """The latest code sent to `to`: the gateway sends from its mail outbox about once a
    second after the turn that asked for it committed."""
    outbox = Path(stack.env["COMPTOIR_VAR_DIR"]) / "outbox"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.txt"), reverse=True):
            content = path.read_text()
            code = re.search(r"(?:code Comptoir : |votre code est )(\d{6})", content)
            if f"To: {to}" in content and code and path.name not in OUTBOX_READ:  # not a birthday email
                OUTBOX_READ.add(path.name)
                return code.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no new code for {to} in {outbox}")


OUTBOX_READ = set()  # each code read once: the next request's code is a new file


def text_found(url, needle):
    """Where `needle` appears in any column of a database, read as text (None if nowhere)."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url, future=True)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            for table in inspector.get_table_names():
                for name in (column["name"] for column in inspector.get_columns(table)):
                    hit = connection.execute(text(
                        f'SELECT 1 FROM "{table}" WHERE CAST("{name}" AS TEXT) LIKE :needle LIMIT 1'),
                        {"needle": f"%{needle}%"}).first()
                    if hit:
                        return f"{table}.{name}"
    finally:
        engine.dispose()
    return None


def tracker_user_texts(stack, sender):
    """What the customer said, as the (shared) tracker store has it."""
    with urllib.request.urlopen(stack.tracker_url(sender), timeout=30) as response:
        return [e["text"] for e in json.loads(response.read())["events"] if e["event"] == "user"]
