"""Start Rasa, the action server and the gateway together, with prefixed logs.

Ctrl-C (or SIGTERM) stops all three cleanly; if one of them dies, the others are
stopped too and the exit status says so.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import unquote, urlsplit

import aiohttp

from bot.settings import PROJECT_ROOT, Settings

COLOURS = {"rasa": "\033[35m", "actions": "\033[36m", "gateway": "\033[32m"}
RESET = "\033[0m"


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


def write_endpoints(settings: Settings) -> Path:
    """Rasa's endpoints file, derived from settings (never edited by hand)."""
    import yaml

    endpoints = {
        "action_endpoint": {"url": f"{settings.action_server_url}/webhook"},
        "tracker_store": tracker_store_config(settings.tracker_store_url),
        "lock_store": lock_store_config(settings.lock_store_url),
    }
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
    base_env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2",
                    PYTHONWARNINGS="ignore::DeprecationWarning,ignore::PendingDeprecationWarning",
                    COMPTOIR_VAR_DIR=str(settings.var_dir), RASA_TOKEN=settings.rasa_token,
                    DATABASE_URL=settings.database_url)
    return [
        ProcessSpec("rasa", [
            python, "-m", "rasa", "run", "--model", str(model), "--endpoints", str(endpoints),
            "--credentials", str(PROJECT_ROOT / "credentials.yml"), "--enable-api",
            "--auth-token", settings.rasa_token, "--interface", settings.rasa_host,
            "--port", str(settings.rasa_port),
            *(["--debug"] if settings.log_level == "DEBUG" else []),
        ], dict(base_env, RASA_TELEMETRY_ENABLED="false", SANIC_WORKERS="1")),
        ProcessSpec("actions", [
            python, "-m", "rasa_sdk", "--actions", "actions", "--port", str(settings.action_port),
        ], dict(base_env, SANIC_HOST=settings.action_host)),
        ProcessSpec("gateway", [python, "-m", "bot", "gateway"], base_env),
    ]


async def _pump(name: str, stream: asyncio.StreamReader, width: int) -> None:
    colour = COLOURS.get(name, "") if sys.stdout.isatty() else ""
    reset = RESET if colour else ""
    while True:
        line = await stream.readline()
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip()
        sys.stdout.write(f"{colour}{name.ljust(width)} |{reset} {text}\n")
        sys.stdout.flush()


async def wait_healthy(url: str, timeout: float, procs: Dict[str, asyncio.subprocess.Process]) -> bool:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if any(p.returncode is not None for p in procs.values()):
                return False
            try:
                async with session.get(f"{url}/health", timeout=aiohttp.ClientTimeout(total=5)) as r:
                    if r.status == 200:
                        return True
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(1)
    return False


async def _terminate(procs: Dict[str, asyncio.subprocess.Process], grace: float = 15) -> None:
    for proc in procs.values():
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs.values())), grace)
    except asyncio.TimeoutError:
        for proc in procs.values():
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.gather(*(p.wait() for p in procs.values()))


async def supervise(settings: Settings, specs: List[ProcessSpec], startup_timeout: float = 240) -> int:
    width = max(len(s.name) for s in specs)
    procs: Dict[str, asyncio.subprocess.Process] = {}
    pumps = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    for spec in specs:
        proc = await asyncio.create_subprocess_exec(
            *spec.argv, cwd=PROJECT_ROOT, env=spec.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        procs[spec.name] = proc
        pumps.append(asyncio.create_task(_pump(spec.name, proc.stdout, width)))
    say = lambda text: print(f"{'up'.ljust(width)} | {text}", flush=True)  # noqa: E731
    say("starting Rasa (loads the model, about 20 s), the action server and the gateway...")
    started = time.monotonic()
    health = asyncio.create_task(wait_healthy(settings.gateway_url, startup_timeout, procs))
    exits = [asyncio.create_task(p.wait()) for p in procs.values()]
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([health, stopper, *exits], return_when=asyncio.FIRST_COMPLETED)
    status = 0
    if health in done and health.result():
        say(f"Comptoir is ready in {time.monotonic() - started:.0f} s: {settings.gateway_url} "
            f"(health: {settings.gateway_url}/health). Ctrl-C stops everything.")
        done, _ = await asyncio.wait([stopper, *exits], return_when=asyncio.FIRST_COMPLETED)
    if not stop.is_set():
        dead = [name for name, p in procs.items() if p.returncode is not None]
        if dead:
            say(f"{', '.join(dead)} stopped unexpectedly; stopping the others.")
        else:
            say(f"not healthy after {startup_timeout:.0f} s; stopping.")
        status = 1
    else:
        say("stopping...")
    health.cancel()
    stopper.cancel()
    await _terminate(procs)
    await asyncio.gather(*pumps, return_exceptions=True)
    say("stopped.")
    return status
