"""Start Rasa, the action server and the gateway together, with prefixed logs.

Ctrl-C (or SIGTERM) stops all three cleanly; if one of them dies, the others are
stopped too and the exit status says so.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import unquote, urlsplit

import aiohttp

from bot.core.settings import PROJECT_ROOT, Settings

COLOURS = {"rasa": "\033[35m", "actions": "\033[36m", "gateway": "\033[32m"}
RESET = "\033[0m"
# How long the processes have to stop on Ctrl-C before they are killed.
STOP_GRACE_SECONDS = 20


def tracker_store_config(url: str) -> Dict[str, object]:
    """Rasa's SQL tracker store wants the URL in parts."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return {"type": "SQL", "dialect": "sqlite", "db": url.split("///", 1)[1]}
    config: Dict[str, object] = {
        "type": "SQL", "dialect": "postgresql", "url": parts.hostname or "127.0.0.1",
        "db": parts.path.lstrip("/") or "postgres",
    }
    if parts.port:
        config["port"] = parts.port
    if parts.username:
        config["username"] = unquote(parts.username)
    if parts.password:
        config["password"] = unquote(parts.password)
    return config


def lock_store_config(url: Optional[str]) -> Dict[str, object]:
    if not url:
        return {"type": "in_memory"}
    parts = urlsplit(url)
    config: Dict[str, object] = {"type": "redis", "url": parts.hostname or "127.0.0.1",
                                 "port": parts.port or 6379,
                                 "db": int(parts.path.lstrip("/") or 0),
                                 "key_prefix": "comptoir"}
    if parts.password:
        config["password"] = unquote(parts.password)
    if parts.scheme == "rediss":
        config["use_ssl"] = True
    return config


def prepare_sqlite_tracker_store(url: str) -> None:
    """Put an SQLite tracker store in WAL mode (kept in the file): Rasa commits every turn,
    and WAL makes those commits cheap and lets the gateway read while Rasa writes."""
    if not url.startswith("sqlite"):
        return
    import sqlite3

    path = Path(url.split("///", 1)[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def write_endpoints(settings: Settings) -> Path:
    """Rasa's endpoints file, derived from settings (never edited by hand)."""
    import yaml

    endpoints = {
        "action_endpoint": {"url": f"{settings.action_server_url}/webhook",
                            "token": settings.action_token,  # sent as ?token=, checked there
                            # Our actions never read the domain: it is not sent with every call.
                            "enable_selective_domain": True},
        "tracker_store": tracker_store_config(settings.tracker_store_url),
        "lock_store": lock_store_config(settings.lock_store_url),
    }
    prepare_sqlite_tracker_store(settings.tracker_store_url)
    path = settings.var_dir / "endpoints.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Generated from settings by `python -m bot up`; do not edit.\n"
                    + yaml.safe_dump(endpoints, sort_keys=False))
    return path


@dataclass
class ProcessSpec:
    name: str
    argv: List[str]
    env: Dict[str, str]


def process_specs(settings: Settings, model: Path, endpoints: Path) -> List[ProcessSpec]:
    python = sys.executable
    # Secrets go through the environment, never the command line (`ps` shows that).
    base_env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2",
                    PYTHONWARNINGS="ignore::DeprecationWarning,ignore::PendingDeprecationWarning",
                    COMPTOIR_VAR_DIR=str(settings.var_dir), RASA_TOKEN=settings.rasa_token,
                    DATABASE_URL=settings.database_url)
    rasa_env = dict(base_env, RASA_TELEMETRY_ENABLED="false", SANIC_WORKERS="1")
    actions_env = {k: v for k, v in base_env.items() if k != "RASA_TOKEN"}
    replicas = [ProcessSpec("rasa" if i == 0 else f"rasa-{i + 1}", [
        python, "-m", "bot.ops.rasa_server", "run", "--model", str(model), "--endpoints", str(endpoints),
        "--credentials", str(PROJECT_ROOT / "credentials.yml"), "--enable-api",
        "--interface", settings.rasa_host, "--port", str(settings.rasa_port + i),
        *(["--debug"] if settings.log_level == "DEBUG" else []),
    ], rasa_env) for i in range(settings.rasa_replicas)]
    return [
        *replicas,
        ProcessSpec("actions", [
            python, "-m", "bot.ops.action_server", "--actions", "actions", "--port", str(settings.action_port),
        ], dict(actions_env, SANIC_HOST=settings.action_host, ACTION_TOKEN=settings.action_token)),
        *(ProcessSpec("gateway" if i == 0 else f"gateway-{i + 1}", [python, "-m", "bot", "gateway"],
                      dict(base_env, GATEWAY_PORT=str(settings.gateway_port + i)))
          for i in range(settings.gateway_replicas)),
    ]


async def _pump(name: str, stream: asyncio.StreamReader, width: int) -> None:
    colour = COLOURS.get(name.split("-")[0], "") if sys.stdout.isatty() else ""  # rasa-2 too
    reset = RESET if colour else ""
    while True:
        line = await stream.readline()
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip()
        sys.stdout.write(f"{colour}{name.ljust(width)} |{reset} {text}\n")
        sys.stdout.flush()


async def wait_healthy(url: str, timeout: float, failed: asyncio.Event) -> bool:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and not failed.is_set():
            try:
                async with session.get(f"{url}/health", timeout=aiohttp.ClientTimeout(total=5)) as r:
                    replicas = (await r.json()).get("components", {}).get("rasa", {}).get("replicas_up", "")
                    up, _, total = replicas.partition("/")
                    if r.status == 200 and up == total:  # every Rasa replica, not just one
                        return True
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                pass
            await asyncio.sleep(1)
    return False


async def _all_healthy(urls, timeout: float, failed: asyncio.Event) -> bool:
    return all(await asyncio.gather(*(wait_healthy(url, timeout, failed) for url in urls)))


class Child:
    """One supervised process; restarted when it dies after start-up succeeded."""

    def __init__(self, spec: ProcessSpec, width: int, say) -> None:
        self.spec = spec
        self.width = width
        self.say = say
        self.proc: Optional[asyncio.subprocess.Process] = None

    async def start(self) -> asyncio.Task:
        self.proc = await asyncio.create_subprocess_exec(
            *self.spec.argv, cwd=PROJECT_ROOT, env=self.spec.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        self.say(f"{self.spec.name} started (pid {self.proc.pid})")
        return asyncio.create_task(_pump(self.spec.name, self.proc.stdout, self.width))

    async def keep_alive(self, stop: asyncio.Event, ready: asyncio.Event,
                         failed: asyncio.Event) -> None:
        recent: List[float] = []
        while True:
            pump = await self.start()
            code = await self.proc.wait()
            await pump
            if stop.is_set():
                return
            now = time.monotonic()
            recent = [t for t in recent if now - t < 60] + [now]
            if not ready.is_set() or len(recent) > 5:
                self.say(f"{self.spec.name} exited with code {code}; stopping everything.")
                failed.set()
                return
            self.say(f"{self.spec.name} exited with code {code}; restarting it.")
            await asyncio.sleep(1)

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass


def busy_ports(settings: Settings) -> List[str]:
    """Ports we need that something else already listens on (another Comptoir?)."""
    busy = []
    wanted = [("GATEWAY_PORT" if i == 0 else f"GATEWAY_PORT+{i}", settings.gateway_host,
               settings.gateway_port + i) for i in range(settings.gateway_replicas)]
    wanted += [("ACTION_PORT", settings.action_host, settings.action_port)]
    wanted += [("RASA_PORT" if i == 0 else f"RASA_PORT+{i}", settings.rasa_host, settings.rasa_port + i)
               for i in range(settings.rasa_replicas)]
    for name, host, port in wanted:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            # As the servers themselves bind: a listener is busy, connections of the last
            # run still in TIME_WAIT are not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                busy.append(f"{name}={port}")
    return busy


async def supervise(settings: Settings, specs: List[ProcessSpec], startup_timeout: float = 240) -> int:
    width = max(len(s.name) for s in specs)

    def say(text: str) -> None:
        print(f"{'up'.ljust(width)} | {text}", flush=True)

    busy = busy_ports(settings)
    if busy:
        say(f"port already in use: {', '.join(busy)}. Is Comptoir already running? Stop it, or "
            "choose other ports (GATEWAY_PORT, RASA_PORT, ACTION_PORT).")
        return 1

    stop, ready, failed = asyncio.Event(), asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    children = [Child(spec, width, say) for spec in specs]
    say("starting Rasa (loads the model, about 30 s), the action server and the gateway...")
    started = time.monotonic()
    keepers = [asyncio.create_task(c.keep_alive(stop, ready, failed)) for c in children]
    health = asyncio.create_task(_all_healthy(settings.gateway_urls, startup_timeout, failed))
    waiters = [asyncio.create_task(e.wait()) for e in (stop, failed)]
    await asyncio.wait([health, *waiters], return_when=asyncio.FIRST_COMPLETED)
    if health.done() and health.result() and not stop.is_set():
        if settings.gateway_replicas > 1:
            say(f"{settings.gateway_replicas} gateways: {', '.join(settings.gateway_urls)}; put "
                f"your load balancer in front of them (PUBLIC_URL={settings.public_url}).")
        ready.set()
        say(f"Comptoir is ready in {time.monotonic() - started:.0f} s: {settings.gateway_url} "
            f"(health: {settings.gateway_url}/health). Ctrl-C stops everything.")
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    elif not stop.is_set() and not failed.is_set():
        say(f"not healthy after {startup_timeout:.0f} s; stopping.")
        failed.set()
    status = 1 if failed.is_set() and not stop.is_set() else 0
    say("stopping...")
    stop.set()
    health.cancel()
    for child in children:
        child.signal(signal.SIGTERM)
    _done, pending = await asyncio.wait(keepers, timeout=STOP_GRACE_SECONDS)
    if pending:
        late = [child for child, keeper in zip(children, keepers) if keeper in pending]
        say(f"{', '.join(c.spec.name for c in late)} still running after "
            f"{STOP_GRACE_SECONDS} s; killed.")
        for child in late:
            child.signal(signal.SIGKILL)
        await asyncio.wait(pending)
    for waiter in waiters:
        waiter.cancel()
    say("stopped.")
    return status
