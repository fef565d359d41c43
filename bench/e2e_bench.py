"""End-to-end benchmark: Comptoir through its gateway against a bare Rasa 3.6 assistant.

    python bench/e2e_bench.py                       # 20 customers, 5 conversations each
    python bench/e2e_bench.py --customers 40 --think 0.5 --skip-bare
    python bench/e2e_bench.py --soak 10000 --skip-bare   # 10,000 messages, memory over time
    python bench/e2e_bench.py --scale-out            # PostgreSQL + Redis, two Rasa replicas

Starts the whole Comptoir system (`python -m bot up`, free ports, a fresh demo shop in
var/bench/e2e/, the cached model) and reports the time to healthy and whether training
was needed. N simulated customers then hold realistic conversations in French through
the REST endpoint (greeting, stock question and size, store hours, birthday, consent
change, thanks) with a think time between messages, and the script prints p50/p95/p99
per message, messages per second and the resident memory of each process after the run.

The same customers also talk to the `rasa init` example assistant (trained once into
var/bench/rasa-init/) served by `rasa run` on this machine through its REST channel.
Both servers run side by side and take turns (`--repeat` phases each, default 3), so
the two systems are measured in the same machine state; the ratio of the two pooled
p50s is printed, with each phase's p50s. Targets: p50 within 1.3x of bare Rasa, p99
under 150 ms at 20 customers.

`--scale-out` runs Comptoir as the README's deployment section describes: shop database
and tracker store on PostgreSQL (two fresh databases, dropped afterwards, on the server
at COMPTOIR_BENCH_POSTGRES_URL, default the local one), Redis as lock store
(COMPTOIR_BENCH_REDIS_URL) and `--replicas` Rasa servers (default 2) behind the gateway.

`--soak N` sends N messages from the customers without think time and prints the
resident memory of each process every N/5 messages: it should stay flat, with no error.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"
PYTHON = sys.executable

# Each simulated customer picks one of these conversations (French, as shoppers write).
CONVERSATIONS = [
    ["bonjour", "vous avez les pegasus 41 homme ?", "en 42 noir a lyon part dieu", "et en bleu ?",
     "merci beaucoup", "au revoir"],
    ["slt", "horaires du magasin de lille", "vous êtes ouverts dimanche à Bordeaux ?", "merci"],
    ["bonjour", "c'est mon anniversaire, j'ai droit à un cadeau ?", "plus tard", "merci", "bye"],
    ["bonsoir", "je ne veux plus recevoir de sms", "quels sont les horaires de Nice ?", "merci"],
    ["hello", "il me faut des pièces pour ma magnifica s", "vous avez la tondeuse bosch rotak ?",
     "merci bien"],
    ["bonjour", "vous avez des hoka speedgoat 6 femme en 38 ?", "à Lille", "ok merci"],
]
BARE_CONVERSATION = ["hello", "I am sad", "yes", "great, thanks", "are you a bot?", "bye"]


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
def scale_out_env(replicas: int) -> Iterator[Dict[str, str]]:
    """Two fresh PostgreSQL databases (shop, trackers) and the Redis lock store."""
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
               "LOCK_STORE_URL": redis_url, "RASA_REPLICAS": str(replicas)}
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE datname = :name"), {"name": name})
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def percentiles(samples: List[float]) -> Dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1]}


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


async def converse(url: str, sender: str, script: List[str], think: float,
                   latencies: List[float], errors: List[str], session: aiohttp.ClientSession,
                   rng: random.Random) -> None:
    for message in script:
        started = time.perf_counter()
        try:
            async with session.post(url, json={"sender": sender, "message": message}) as response:
                body = await response.json()
                if response.status != 200 or not isinstance(body, list) or not body:
                    errors.append(f"{response.status} {str(body)[:80]}")
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            errors.append(type(error).__name__)
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))


async def load(url: str, customers: int, rounds: int, think: float, scripts: List[List[str]],
               tag: str) -> Dict[str, object]:
    """`customers` at once, each holding `rounds` conversations; latency per message."""
    latencies: List[float] = []
    errors: List[str] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        # Warm-up: one message per customer, not measured.
        await asyncio.gather(*(session.post(url, json={"sender": f"{tag}-warm-{i}", "message": "bonjour"})
                               for i in range(min(customers, 4))))

        async def customer(index: int) -> None:
            rng = random.Random(index)
            # Customers come in over one think time, as they do in a shop, not all in the
            # same millisecond: a synchronised burst of N first messages would measure N
            # messages queued behind each other, not N customers in conversation.
            await asyncio.sleep(rng.uniform(0, think))
            for round_ in range(rounds):
                script = scripts[(index + round_) % len(scripts)]
                await converse(url, f"{tag}-{index}-{round_}", script, think, latencies, errors,
                               session, rng)

        started = time.perf_counter()
        await asyncio.gather(*(customer(i) for i in range(customers)))
        elapsed = time.perf_counter() - started
    return {"latency": percentiles(latencies), "messages": len(latencies), "samples": latencies,
            "per_second": len(latencies) / elapsed, "errors": errors, "elapsed": elapsed}


def pooled(runs: List[Dict[str, object]]) -> Dict[str, object]:
    """Several load phases of one system taken together."""
    samples = [x for run in runs for x in run["samples"]]
    return {"latency": percentiles(samples), "messages": len(samples),
            "per_second": len(samples) / sum(run["elapsed"] for run in runs),
            "errors": [e for run in runs for e in run["errors"]]}


def start_comptoir(var_dir: Path, backend: Dict[str, str]) -> Dict[str, object]:
    replicas = int(backend.get("RASA_REPLICAS", 1))
    ports = {"GATEWAY_PORT": free_port(), "RASA_PORT": free_ports(replicas), "ACTION_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "COMPTOIR_VAR_DIR": str(var_dir),
           "LOG_LEVEL": "WARNING"}
    for name in ("DATABASE_URL", "TRACKER_STORE_URL", "LOCK_STORE_URL", "TELEGRAM_BOT_TOKEN",
                 "RASA_REPLICAS"):
        env.pop(name, None)
    env.update(backend)
    started = time.monotonic()
    process = Process([PYTHON, "-m", "bot", "up"], env, ROOT)
    process.wait_for(r"Comptoir is ready", timeout=900)
    ready = time.monotonic() - started
    trained = any("training comptoir-" in line for line in process.lines)
    pids = {name: int(process.wait_for(rf"{name} started \(pid (\d+)\)", 5).group(1))
            for name in ["rasa", *(f"rasa-{i + 1}" for i in range(1, replicas)), "actions", "gateway"]}
    return {"process": process, "url": f"http://127.0.0.1:{ports['GATEWAY_PORT']}",
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


async def soak(url: str, customers: int, total: int, pids: Dict[str, int]) -> Dict[str, object]:
    """`total` messages from `customers` at once, as fast as answered; memory every fifth."""
    sent, errors, latencies, memory = 0, [], [], []
    step = max(1, total // 5)
    memory.append((0, {name: rss_mb(pid) for name, pid in pids.items()}))
    timeout = aiohttp.ClientTimeout(total=60)
    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async def customer(index: int) -> None:
            nonlocal sent
            rng, round_ = random.Random(index), 0
            while sent < total:
                script = CONVERSATIONS[(index + round_) % len(CONVERSATIONS)]
                for message in script:
                    if sent >= total:
                        return
                    sent += 1
                    if sent % step == 0:
                        memory.append((sent, {name: rss_mb(pid) for name, pid in pids.items()}))
                    await converse(url, f"soak-{index}-{round_}", [message], 0, latencies, errors,
                                   session, rng)
                round_ += 1

        await asyncio.gather(*(customer(i) for i in range(customers)))
    elapsed = time.perf_counter() - started
    return {"latency": percentiles(latencies), "messages": len(latencies), "errors": errors,
            "per_second": len(latencies) / elapsed, "memory": memory}


def row(name: str, result: Dict[str, object]) -> str:
    lat = result["latency"]
    return (f"| {name} | {lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f} / {lat['max']:.0f} | "
            f"{result['per_second']:.1f} | {result['messages']} | {len(result['errors'])} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="conversations per customer")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between messages")
    parser.add_argument("--skip-bare", action="store_true", help="do not measure bare Rasa")
    parser.add_argument("--soak", type=int, default=0, help="then send this many messages, no think time")
    parser.add_argument("--repeat", type=int, default=3, help="load phases per system, taken in turns")
    parser.add_argument("--scale-out", action="store_true",
                        help="Comptoir on PostgreSQL and Redis with --replicas Rasa servers")
    parser.add_argument("--replicas", type=int, default=2, help="Rasa replicas with --scale-out")
    args = parser.parse_args()
    with scale_out_env(args.replicas) if args.scale_out else contextlib.nullcontext({}) as backend:
        return run(args, backend)


def run(args: argparse.Namespace, backend: Dict[str, str]) -> int:
    var_dir = BENCH_DIR / "e2e"
    if var_dir.exists():
        subprocess.run(["rm", "-rf", str(var_dir)], check=True)

    comptoir = start_comptoir(var_dir, backend)
    server = None if args.skip_bare else start_bare_rasa()
    ours_runs: List[Dict[str, object]] = []
    bare_runs: List[Dict[str, object]] = []
    try:
        # Both servers stay up and take turns, so each phase of one has the machine in the
        # same state as the phase of the other just before or after it (one phase each
        # gave bare Rasa a p50 of 29, 36 or 57 ms depending on the run).
        for repeat in range(args.repeat):
            ours_runs.append(asyncio.run(load(comptoir["url"] + "/webhooks/rest/webhook", args.customers,
                                              args.rounds, args.think, CONVERSATIONS, f"bench{repeat}")))
            if server:
                bare_runs.append(asyncio.run(load(server["url"] + "/webhooks/rest/webhook", args.customers,
                                                  args.rounds, args.think, [BARE_CONVERSATION],
                                                  f"bare{repeat}")))
        memory = {name: rss_mb(pid) for name, pid in comptoir["pids"].items()}
        bare_memory = rss_mb(server["process"].proc.pid) if server else 0.0
        if server:
            server["process"].stop()
        soaked = asyncio.run(soak(comptoir["url"] + "/webhooks/rest/webhook", args.customers,
                                  args.soak, comptoir["pids"])) if args.soak else None
    finally:
        comptoir["process"].stop()
        if server:
            server["process"].stop()
    ours = pooled(ours_runs)
    bare: Optional[Dict[str, object]] = pooled(bare_runs) if bare_runs else None

    print(f"\n{args.customers} customers, {args.rounds} conversations each, think time "
          f"{args.think} s on average, {args.repeat} phases per system taken in turns; "
          f"latency per message in ms\n")
    print("| system | p50 / p95 / p99 / max ms | messages/s | messages | errors |")
    print("| --- | --- | --- | --- | --- |")
    setup = (f"PostgreSQL + Redis, {backend['RASA_REPLICAS']} Rasa replicas" if backend
             else "SQLite, one Rasa")
    print(row(f"Comptoir (gateway → Rasa → actions; {setup})", ours))
    if bare:
        print(row("bare Rasa 3.6, `rasa init` assistant, REST", bare))
        ratio = ours["latency"]["p50"] / bare["latency"]["p50"]
        print(f"\np50 ratio Comptoir / bare Rasa: {ratio:.2f} (target <= 1.3); phase by phase: "
              + ", ".join(f"{o['latency']['p50']:.0f}/{b['latency']['p50']:.0f} ms"
                          for o, b in zip(ours_runs, bare_runs)))
    print(f"p99 Comptoir: {ours['latency']['p99']:.0f} ms (target < 150 ms)")
    print(f"\nstart to healthy: {comptoir['ready_s']:.0f} s (model trained during start: "
          f"{'yes' if comptoir['trained'] else 'no, cache hit'})")
    print("resident memory after the run: " + ", ".join(f"{k} {v:.0f} MB" for k, v in memory.items())
          + (f"; bare Rasa {bare_memory:.0f} MB" if bare else ""))
    if soaked:
        print(f"\nsoak: {soaked['messages']} messages from {args.customers} customers without think "
              f"time, {soaked['per_second']:.1f} messages/s, {len(soaked['errors'])} errors, latency "
              + " / ".join(f"{k} {v:.0f}" for k, v in soaked["latency"].items()) + " ms")
        print("| messages sent | " + " | ".join(comptoir["pids"]) + " |")
        print("| --- |" + " --- |" * len(comptoir["pids"]))
        for count, sample in soaked["memory"]:
            print(f"| {count} | " + " | ".join(f"{v:.0f} MB" for v in sample.values()) + " |")
    if ours["errors"] or (bare and bare["errors"]) or (soaked and soaked["errors"]):
        print("errors:", ours["errors"][:5], bare["errors"][:5] if bare else "")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
