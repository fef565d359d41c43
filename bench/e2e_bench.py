"""End-to-end benchmark: Comptoir through its gateway against a bare Rasa 3.6 assistant.

    python bench/e2e_bench.py                       # 20 customers, 5 conversations each
    python bench/e2e_bench.py --customers 40 --think 0.5 --skip-bare
    python bench/e2e_bench.py --soak 10000 --skip-bare   # 10,000 messages, memory over time
    python bench/e2e_bench.py --skip-bare --long 300     # then one 300-turn conversation
    python bench/e2e_bench.py --skip-bare --history 40   # conversations already 40 turns deep
    python bench/e2e_bench.py --scale-out            # PostgreSQL + Redis, two Rasa replicas
    python bench/e2e_bench.py --scale-out --gateways 2   # ... and two gateways

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
(COMPTOIR_BENCH_REDIS_URL) and `--replicas` Rasa servers (default 2) behind `--gateways`
gateways (default 1; with 2 or more, they share state through Redis and the customers
are spread over them, customer i on gateway i mod N, as a balancer would).

Conversations are fresh (a new sender id for each) unless `--history N`: each customer
then keeps one sender id, given N turns of history before measuring, as a returning
shopper or a client that keeps its id would. `--long N` ends with one conversation of N
turns, 1.05 s apart, and compares the median of its last 15 turns with that of turns
4-18 (target: within 1.3x). Every run prints the longest garbage-collector pause of each
process, read from the `gc:` lines `bot/core/gcwatch.py` writes (target: under 50 ms).

`--soak N` sends N messages from the customers without think time and prints the
resident memory of each process every N/5 messages: it should stay flat, with no error.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

import aiohttp

from stack import (BENCH_DIR, longest_gc_pauses, rss_mb, scale_out_env, start_bare_rasa,
                   start_comptoir)

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
FLOOD_REFILL_SECONDS = 12
BARE_CONVERSATION = ["hello", "I am sad", "yes", "great, thanks", "are you a bot?", "bye"]
# The long conversation: store hours, a stock question and thanks, in turn.
LONG_CONVERSATION = ["quels sont les horaires du magasin de lille ?", "vous avez les pegasus 41 homme ?",
                     "merci"]


def percentiles(samples: List[float]) -> Dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1]}


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


async def load(urls: List[str], customers: int, rounds: int, think: float, scripts: List[List[str]],
               tag: str, continued: bool = False) -> Dict[str, object]:
    """`customers` at once, each holding `rounds` conversations; latency per message.
    With several gateways, customer i talks to gateway i mod N (a balancer's spread).

    Fresh: each conversation has a sender id of its own. Continued: each customer keeps
    one sender id (`{tag}-{index}`, prepared by `prefill`) for all its conversations."""
    latencies: List[float] = []
    errors: List[str] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        # Warm-up: one message per customer, not measured.
        await asyncio.gather(*(session.post(urls[i % len(urls)], json={
            "sender": f"{tag}-warm-{i}", "message": "bonjour"}) for i in range(min(customers, 4))))

        async def customer(index: int) -> None:
            rng = random.Random(index)
            # Customers come in over one think time, as they do in a shop, not all in the
            # same millisecond: a synchronised burst of N first messages would measure N
            # messages queued behind each other, not N customers in conversation.
            await asyncio.sleep(rng.uniform(0, think))
            for round_ in range(rounds):
                script = scripts[(index + round_) % len(scripts)]
                sender = f"{tag}-{index}" if continued else f"{tag}-{index}-{round_}"
                await converse(urls[index % len(urls)], sender, script, think, latencies, errors,
                               session, rng)

        started = time.perf_counter()
        await asyncio.gather(*(customer(i) for i in range(customers)))
        elapsed = time.perf_counter() - started
    return {"latency": percentiles(latencies), "messages": len(latencies), "samples": latencies,
            "per_second": len(latencies) / elapsed, "errors": errors, "elapsed": elapsed}


async def prefill(urls: List[str], customers: int, turns: int, scripts: List[List[str]],
                  tag: str) -> List[str]:
    """Give each customer's conversation (`{tag}-{index}`) `turns` messages of history
    before measuring, all customers at once and without pause; returns the errors."""
    errors: List[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def customer(index: int) -> None:
            flat = [m for round_ in range(turns) for m in scripts[(index + round_) % len(scripts)]]
            await converse(urls[index % len(urls)], f"{tag}-{index}", flat[:turns], 0, [], errors,
                           session, random.Random(index))

        await asyncio.gather(*(customer(i) for i in range(customers)))
    return errors


async def long_conversation(url: str, turns: int, script: List[str], sender: str,
                            think: float) -> Dict[str, object]:
    """One conversation of `turns` messages in a row (the script over and over), `think`
    seconds between an answer and the next message: the latency of each turn, in order.
    Without a pause the gateway's flood limit (a person's pace, README) would slow the
    conversation down, and its wait would be measured instead of the turn."""
    latencies: List[float] = []
    errors: List[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for turn in range(turns):
            await converse(url, sender, [script[turn % len(script)]], 0, latencies, errors, session,
                           random.Random(turn))
            await asyncio.sleep(think)
    return {"samples": latencies, "errors": errors}


def growth(latencies: List[float]) -> Dict[str, float]:
    """Median of turns 4-18 (around the 10th) against the median of the last 15."""
    early, late = statistics.median(latencies[3:18]), statistics.median(latencies[-15:])
    return {"early": early, "late": late, "ratio": late / early}


def pooled(runs: List[Dict[str, object]]) -> Dict[str, object]:
    """Several load phases of one system taken together."""
    samples = [x for run in runs for x in run["samples"]]
    return {"latency": percentiles(samples), "messages": len(samples),
            "per_second": len(samples) / sum(run["elapsed"] for run in runs),
            "errors": [e for run in runs for e in run["errors"]]}


async def soak(urls: List[str], customers: int, total: int, pids: Dict[str, int]) -> Dict[str, object]:
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
                    await converse(urls[index % len(urls)], f"soak-{index}-{round_}", [message], 0,
                                   latencies, errors, session, rng)
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
    parser.add_argument("--gateways", type=int, default=1,
                        help="gateways with --scale-out (customers spread over them)")
    parser.add_argument("--history", type=int, default=0,
                        help="continued conversations: each customer keeps one conversation, "
                             "this many turns deep before measuring (0: fresh conversations)")
    parser.add_argument("--long", type=int, default=0,
                        help="then one conversation of this many turns: the last turns against the 10th")
    parser.add_argument("--long-think", type=float, default=1.05,
                        help="seconds between the turns of the long conversation")
    args = parser.parse_args()
    if args.gateways > 1 and not args.scale_out:
        parser.error("--gateways above 1 needs --scale-out (Redis and PostgreSQL)")
    with scale_out_env(args.replicas, args.gateways) if args.scale_out \
            else contextlib.nullcontext({}) as backend:
        return run(args, backend)


def run(args: argparse.Namespace, backend: Dict[str, str]) -> int:
    var_dir = BENCH_DIR / "e2e"
    if var_dir.exists():
        subprocess.run(["rm", "-rf", str(var_dir)], check=True)

    comptoir = start_comptoir(var_dir, backend)
    server = None if args.skip_bare else start_bare_rasa()
    ours_runs: List[Dict[str, object]] = []
    bare_runs: List[Dict[str, object]] = []
    rest = "/webhooks/rest/webhook"
    systems = [("Comptoir", [url + rest for url in comptoir["urls"]], CONVERSATIONS, LONG_CONVERSATION)]
    if server:
        systems.append(("bare Rasa", [server["url"] + rest], [BARE_CONVERSATION], BARE_CONVERSATION))
    runs: Dict[str, List[Dict[str, object]]] = {name: [] for name, *_ in systems}
    long_turns: Dict[str, Dict[str, object]] = {}
    try:
        if args.history:
            for name, urls, scripts, _ in systems:
                errors = asyncio.run(prefill(urls, args.customers, args.history, scripts, "continued"))
                if errors:
                    raise SystemExit(f"{name}: {len(errors)} errors while preparing the conversations, "
                                     f"first {errors[0]}")
            # The prefill spent each conversation's flood allowance (bot/web/conversation.py: 10 at
            # once, then one a second); measured before it refills, its wait would be.
            time.sleep(FLOOD_REFILL_SECONDS)
        # Both servers stay up and take turns, so each phase of one has the machine in the
        # same state as the phase of the other just before or after it (one phase each
        # gave bare Rasa a p50 of 29, 36 or 57 ms depending on the run).
        for repeat in range(args.repeat):
            for name, urls, scripts, _ in systems:
                tag = "continued" if args.history else f"{name.split()[0].lower()}{repeat}"
                runs[name].append(asyncio.run(load(urls, args.customers, args.rounds, args.think,
                                                   scripts, tag, continued=bool(args.history))))
        if args.long:
            for name, urls, _, script in systems:
                long_turns[name] = asyncio.run(long_conversation(
                    urls[0], args.long, script, "long-conversation", args.long_think))
        memory = {name: rss_mb(pid) for name, pid in comptoir["pids"].items()}
        bare_memory = rss_mb(server["process"].proc.pid) if server else 0.0
        if server:
            server["process"].stop()
        soaked = asyncio.run(soak(systems[0][1], args.customers, args.soak,
                                  comptoir["pids"])) if args.soak else None
    finally:
        comptoir["process"].stop()
        if server:
            server["process"].stop()
    ours_runs, bare_runs = runs["Comptoir"], runs.get("bare Rasa", [])
    ours = pooled(ours_runs)
    bare: Optional[Dict[str, object]] = pooled(bare_runs) if bare_runs else None

    kind = (f"continued conversations: each customer kept one conversation, {args.history} turns "
            f"deep when measuring began" if args.history
            else "fresh conversations: a new conversation for each")
    print(f"\n{args.customers} customers, {args.rounds} conversations each ({kind}), think time "
          f"{args.think} s on average, {args.repeat} phases per system taken in turns; "
          f"latency per message in ms\n")
    print("| system | p50 / p95 / p99 / max ms | messages/s | messages | errors |")
    print("| --- | --- | --- | --- | --- |")
    setup = (f"PostgreSQL + Redis, {backend['GATEWAY_REPLICAS']} gateway(s), "
             f"{backend['RASA_REPLICAS']} Rasa replicas" if backend else "SQLite, one Rasa")
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
    for name, long_run in long_turns.items():
        latencies = long_run["samples"]
        seen = growth(latencies)
        print(f"long conversation ({name}, one conversation continued over {len(latencies)} turns, "
              f"{args.long_think} s between turns): turns 4-18 median {seen['early']:.0f} ms, last 15 median "
              f"{seen['late']:.0f} ms, ratio {seen['ratio']:.2f} (target <= 1.3 for Comptoir); "
              f"{len(long_run['errors'])} turns without an answer")
    pauses = longest_gc_pauses(comptoir["process"])
    print("longest garbage-collector pause after start-up: "
          + (", ".join(f"{name} {ms:.1f} ms" for name, ms in sorted(pauses.items()))
             or "none logged (processes without bot.core.gcwatch)") + " (target < 50 ms)")
    if soaked:
        print(f"\nsoak: {soaked['messages']} messages from {args.customers} customers without think "
              f"time (fresh conversations: a new one for each script), {soaked['per_second']:.1f} messages/s, {len(soaked['errors'])} errors, latency "
              + " / ".join(f"{k} {v:.0f}" for k, v in soaked["latency"].items()) + " ms")
        print("| messages sent | " + " | ".join(comptoir["pids"]) + " |")
        print("| --- |" + " --- |" * len(comptoir["pids"]))
        for count, sample in soaked["memory"]:
            print(f"| {count} | " + " | ".join(f"{v:.0f} MB" for v in sample.values()) + " |")
    if (ours["errors"] or (bare and bare["errors"]) or (soaked and soaked["errors"])
            or long_turns.get("Comptoir", {}).get("errors")):
        print("errors:", ours["errors"][:5], bare["errors"][:5] if bare else "")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
