"""The systems a benchmark measures, as processes: Comptoir started by `python -m bot up`
(embedded, or on PostgreSQL and Redis), the `rasa init` example assistant served by
`rasa run`, and what can be read off them (resident memory, garbage-collector pauses)."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"
PYTHON = sys.executable
# `bot.core.gcwatch` writes one such line each time a collection is the longest of its process.
GC_PAUSE = re.compile(r"^(\S+)\s*\| gc: \S+ longest pause ([\d.]+) ms")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (Rasa replicas take RASA_PORT + i)."""
    while True:
        first = free_port()
        try:
            for offset in range(1, count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", first + offset))
            return first
        except OSError:
            continue


@contextlib.contextmanager
def scale_out_env(replicas: int, gateways: int = 1) -> Iterator[Dict[str, str]]:
    """Two fresh PostgreSQL databases (shop, trackers) and Redis (the lock store, and the
    gateways' shared state when there are several)."""
    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    admin_url = os.environ.get("COMPTOIR_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("COMPTOIR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
    try:
        redis.Redis.from_url(redis_url, socket_timeout=2).ping()
    except redis.RedisError as error:
        sys.exit(f"--scale-out needs Redis at {redis_url} (COMPTOIR_BENCH_REDIS_URL): {error}")
    admin = create_engine(admin_url, future=True, isolation_level="AUTOCOMMIT")
    names = [f"comptoir_bench_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("shop", "trackers")]
    try:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as error:
        sys.exit(f"--scale-out needs a PostgreSQL server where it may create databases "
                 f"(COMPTOIR_BENCH_POSTGRES_URL): {type(error).__name__}")
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield {"DATABASE_URL": f"{base}/{names[0]}", "TRACKER_STORE_URL": f"{base}/{names[1]}",
               "LOCK_STORE_URL": redis_url, "RASA_REPLICAS": str(replicas),
               "GATEWAY_REPLICAS": str(gateways), **({"REDIS_URL": redis_url} if gateways > 1 else {})}
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE datname = :name"), {"name": name})
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (Linux /proc)."""
    def children(parent: int) -> List[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == parent:
                    found.append(int(entry.name))
        return found

    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
        todo += children(current)
    return total / 1024


class Process:
    """A child process whose output is kept, to wait for lines in it."""

    def __init__(self, args: List[str], env: Dict[str, str], cwd: Path) -> None:
        self.lines: List[str] = []
        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.proc.poll() is not None:
                raise SystemExit("process ended early:\n" + "\n".join(self.lines[-40:]))
            time.sleep(0.2)
        raise SystemExit(f"no {pattern!r} after {timeout} s:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def start_comptoir(var_dir: Path, backend: Dict[str, str]) -> Dict[str, object]:
    replicas = int(backend.get("RASA_REPLICAS", 1))
    gateways = int(backend.get("GATEWAY_REPLICAS", 1))
    ports = {"GATEWAY_PORT": free_ports(gateways), "RASA_PORT": free_ports(replicas),
             "ACTION_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "COMPTOIR_VAR_DIR": str(var_dir),
           "LOG_LEVEL": "WARNING"}
    for name in ("DATABASE_URL", "TRACKER_STORE_URL", "LOCK_STORE_URL", "REDIS_URL", "TELEGRAM_BOT_TOKEN",
                 "RASA_REPLICAS", "GATEWAY_REPLICAS"):
        env.pop(name, None)
    env.update(backend)
    started = time.monotonic()
    process = Process([PYTHON, "-m", "bot", "up"], env, ROOT)
    process.wait_for(r"Comptoir is ready", timeout=900)
    ready = time.monotonic() - started
    trained = any("training comptoir-" in line for line in process.lines)
    pids = {name: int(process.wait_for(rf"{name} started \(pid (\d+)\)", 5).group(1))
            for name in ["rasa", *(f"rasa-{i + 1}" for i in range(1, replicas)), "actions", "gateway",
                         *(f"gateway-{i + 1}" for i in range(1, gateways))]}
    urls = [f"http://127.0.0.1:{ports['GATEWAY_PORT'] + i}" for i in range(gateways)]
    return {"process": process, "url": urls[0], "urls": urls,
            "ready_s": ready, "trained": trained, "pids": pids, "ports": ports, "env": env}


def start_bare_rasa() -> Dict[str, object]:
    project = BENCH_DIR / "rasa-init"
    rasa = [PYTHON, "-m", "rasa"]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    if not list((project / "models").glob("*.tar.gz")):
        project.mkdir(parents=True, exist_ok=True)
        print("==> rasa init (trains the example assistant once)...", flush=True)
        subprocess.run(rasa + ["init", "--no-prompt", "--init-dir", str(project)], env=env,
                       cwd=project, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    started = time.monotonic()
    process = Process(rasa + ["run", "--port", str(port), "--interface", "127.0.0.1"], env, project)
    process.wait_for(r"Rasa server is up and running", timeout=600)
    return {"process": process, "url": f"http://127.0.0.1:{port}", "ready_s": time.monotonic() - started}


def longest_gc_pauses(process: "Process") -> Dict[str, float]:
    """The longest collection pause of each process of the stack since it froze its
    start-up objects (`bot.core.gcwatch`), in ms, from the lines it logged."""
    longest: Dict[str, float] = {}
    for line in list(process.lines):
        found = GC_PAUSE.match(line)
        if found:
            longest[found.group(1)] = max(longest.get(found.group(1), 0.0), float(found.group(2)))
    return longest
