"""Adversarial run: the security review's attacks replayed against a running Comptoir.

    python bench/attack.py                 # SQLite shop, one Rasa
    python bench/attack.py --keep          # leave var/bench/attack/ for a look afterwards

Starts the whole system (`python -m bot up`, free ports, a fresh demo shop in
var/bench/attack/) and attacks it from outside, as a script on the same machine would:
over REST, socket.io, the console and the internal ports of Rasa and the action server.
It prints one line per attack and the five figures the fixes promise:

- holds beyond the limits (a conversation that kept more than the unverified limit)
- personal data or codes seen by an agent who did not claim the ticket
- differences between the answers for an existing and an unknown contact
- conversations of another channel touched (a 2xx where only the gateway may enter)
- HTTP 500s in all the answers
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import BENCH_DIR, PYTHON, ROOT, start_comptoir  # noqa: E402

PASSWORD = "a long agent password"
STATUSES: List[int] = []


async def call(http: aiohttp.ClientSession, method: str, url: str, **kwargs) -> Tuple[int, Any]:
    async with http.request(method, url, **kwargs) as response:
        STATUSES.append(response.status)
        body = await response.text()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, body


async def say(http, base: str, sender: str, message: str) -> str:
    status, replies = await call(http, "POST", f"{base}/webhooks/rest/webhook",
                                 json={"sender": sender, "message": message})
    return "\n".join(r.get("text") or "" for r in replies) if status == 200 else f"HTTP {status}"


def outbox_code(var: Path, to: str, seen: set, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted((var / "outbox").glob("*.txt"), reverse=True):
            text = path.read_text()
            code = re.search(r"(?:code Comptoir : |votre code est )(\d{6})", text)
            if f"To: {to}" in text and code and path.name not in seen:
                seen.add(path.name)
                return code.group(1)
        time.sleep(0.2)
    raise RuntimeError(f"no code for {to}")


def shop_rows(var: Path, sql: str) -> List[Tuple]:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{var / 'shop.db'}", future=True)
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(text(sql))]
    engine.dispose()
    return rows


async def hoarding(http, base: str, var: Path) -> int:
    """Ten fresh conversations each try to hold six sizes of one shoe in one store."""
    for attacker in range(10):
        sender = f"hoarder-{attacker}"
        for size in range(40, 46):
            await say(http, base, sender, f"pegasus 41 homme {size} noir lyon part dieu")
            await say(http, base, sender, "mettez-le moi de côté")
    per_chat = shop_rows(var, "SELECT identity_id, count(*), sum(quantity) FROM reservations "
                              "WHERE status = 'active' AND customer_id IS NULL GROUP BY identity_id")
    held = sum(count for _, count, _ in per_chat)
    beyond = sum(max(0, count - 2) for _, count, _ in per_chat)
    shelves = shop_rows(var, "SELECT s.quantity, sum(r.quantity) FROM reservations r JOIN stock s "
                             "ON s.variant_id = r.variant_id AND s.store_id = r.store_id "
                             "WHERE r.status = 'active' AND r.customer_id IS NULL "
                             "GROUP BY r.variant_id, r.store_id, s.quantity")
    over_half = sum(max(0, taken - (on_hand + 1) // 2) for on_hand, taken in shelves)
    print(f"hoarding: 10 conversations x 6 holds tried -> {held} held, at most "
          f"{max((c for _, c, _ in per_chat), default=0)} per conversation, {beyond} beyond the "
          f"limit; {over_half} units beyond half of a shelf")
    return beyond + over_half


async def agents_need_to_know(http, base: str, var: Path, env: Dict[str, str], seen: set) -> int:
    for name in ("alice", "bob"):
        subprocess.run([PYTHON, "-m", "bot", "agents", "add", name, "--name", name.title(),
                        "--password-stdin"], input=PASSWORD + "\n", text=True, cwd=ROOT, env=env,
                       check=True, capture_output=True)
    (email, phone), = shop_rows(var, "SELECT email, phone FROM customers WHERE id = 9")
    sender = "victim-1"
    await say(http, base, sender, "quelles données avez-vous sur moi ?")
    await say(http, base, sender, email)
    await say(http, base, sender, outbox_code(var, email, seen))
    await say(http, base, sender, "je veux exporter mes données")
    await say(http, base, sender, "je veux parler à un conseiller")
    consoles = {}
    for name in ("alice", "bob"):
        session = aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True))
        page = await (await session.get("/console")).text()
        form = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        status, me = await call(session, "POST", "/console/login",
                                data={"csrf": form, "username": name, "password": PASSWORD})
        consoles[name] = (session, me["csrf"])
    alice, alice_csrf = consoles["alice"]
    bob, _bob_csrf = consoles["bob"]
    _, queue = await call(alice, "GET", "/console/api/queue")
    ticket = max(t["id"] for t in queue["tickets"] if t["status"] == "open")
    bob_ws = await bob.ws_connect("/console/ws", origin=base)
    await call(alice, "POST", f"/console/api/tickets/{ticket}/claim", headers={"X-CSRF-Token": alice_csrf})
    await say(http, base, sender, f"vous pouvez me rappeler au {phone} ou m'écrire à {email}")
    bob_saw = []
    try:
        while True:
            bob_saw.append((await asyncio.wait_for(bob_ws.receive(), 3)).data or "")
    except asyncio.TimeoutError:
        pass
    status, bob_view = await call(bob, "GET", f"/console/api/tickets/{ticket}")
    _, alice_view = await call(alice, "GET", f"/console/api/tickets/{ticket}")
    secrets = (email, phone, "/exports/")
    leaks = sum(secret in str(text) for text in [*bob_saw, bob_view] for secret in secrets)
    masked = sum(secret in json.dumps(alice_view, ensure_ascii=False) for secret in secrets)
    print(f"console: Bob (not claiming) gets HTTP {status} for the ticket, {len(bob_saw)} live "
          f"events, {leaks} pieces of personal data; Alice (claiming) sees {masked} unmasked")
    await bob_ws.close()
    for session, _ in consoles.values():
        await session.close()
    return leaks + masked


async def contact_probe(http, base: str) -> int:
    (known,), = shop_rows(VAR, "SELECT email FROM customers WHERE id = 10")
    answers, timings = {}, {}
    for label, contact in (("existing", known), ("unknown", "nobody.here@example.org")):
        answers[label], timings[label] = [], []
        for attempt in range(7):
            sender = f"probe-{label}-{attempt}"
            await say(http, base, sender, "je veux voir mes données")
            started = time.perf_counter()
            answers[label].append(await say(http, base, sender, contact))
            timings[label].append((time.perf_counter() - started) * 1000)
    differences = sum(a != b for a, b in zip(answers["existing"], answers["unknown"]))
    print(f"codes: 7 requests each for an existing and an unknown email -> {differences} different "
          f"answers; median {statistics.median(timings['existing']):.0f} ms vs "
          f"{statistics.median(timings['unknown']):.0f} ms")
    return differences


async def other_channels(http, base: str, ports: Dict[str, int]) -> int:
    forged = {"sender": "telegram:4242", "message": "quelles données avez-vous sur moi ?",
              "metadata": {"comptoir_channel": "telegram"}}
    rasa = f"http://127.0.0.1:{ports['RASA_PORT']}"
    action = {"next_action": "action_my_data", "sender_id": "telegram:4242",
              "tracker": {"sender_id": "telegram:4242", "slots": {}, "latest_message": {},
                          "events": []}, "domain": {}}
    attempts = [("POST", f"{base}/webhooks/rest/webhook", forged),
                ("POST", f"{rasa}/webhooks/rest/webhook", forged),
                ("POST", f"{rasa}/webhooks/comptoir/webhook", forged),
                ("POST", f"http://127.0.0.1:{ports['ACTION_PORT']}/webhook", action)]
    touched = 0
    for method, url, body in attempts:
        status, _ = await call(http, method, url, json=body)
        touched += 200 <= status < 300
        print(f"other channel: {url.split('//', 1)[1]} as telegram:4242 -> HTTP {status}")
    return touched


async def denial(http, base: str, ports: Dict[str, int]) -> None:
    deep = b'{"sender": "x", "message": "y", "metadata": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    status, _ = await call(http, "POST", f"{base}/webhooks/rest/webhook", data=deep,
                           headers={"Content-Type": "application/json"})
    print(f"denial: JSON nested 50,000 deep -> HTTP {status}")
    big = {"sender": "fat-1", "message": "bonjour", "metadata": {"pad": "x" * 900_000}}
    status, _ = await call(http, "POST", f"{base}/webhooks/rest/webhook", json=big)
    token = (VAR / "rasa_token").read_text().strip()
    async with http.get(f"http://127.0.0.1:{ports['RASA_PORT']}/conversations/fat-1/tracker",
                        params={"token": token}) as response:
        stored = len(await response.read())
    print(f"denial: 900 KB of metadata -> HTTP {status}; the conversation's tracker holds "
          f"{stored / 1024:.0f} KB")
    flood = await asyncio.gather(*(say(http, base, "flooder", "bonjour") for _ in range(40)))
    slowed = sum("plus vite que je ne peux lire" in text for text in flood)
    print(f"denial: 40 messages at once from one sender -> {slowed} answered 'slow down' at once")
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    confirmed: asyncio.Queue = asyncio.Queue()
    client.on("session_confirm", confirmed.put_nowait)
    await client.connect(base, transports=["polling"], headers={"Origin": base})
    ids = set()
    for attempt in range(30):
        await client.emit("session_request", {"session_id": f"{attempt:032x}"})
        ids.add(await asyncio.wait_for(confirmed.get(), 10))
    await client.eio.disconnect(abort=True)
    print(f"denial: 30 session_request on one socket -> {len(ids)} session id(s)")


async def main_async(var: Path, comptoir: Dict[str, Any], env: Dict[str, str]) -> int:
    base = comptoir["url"]
    seen: set = set()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        figures = {"holds beyond the limits": await hoarding(http, base, var),
                   "personal data or codes to a non-claiming agent":
                       await agents_need_to_know(http, base, var, env, seen),
                   "differences between existing and unknown contacts": await contact_probe(http, base),
                   "conversations of another channel touched":
                       await other_channels(http, base, comptoir["ports"])}
        await denial(http, base, comptoir["ports"])
    figures["HTTP 500s"] = sum(status >= 500 for status in STATUSES)
    print(f"\n{len(STATUSES)} HTTP answers in all")
    for name, value in figures.items():
        print(f"  {value:>3}  {name}")
    return 0 if not any(figures.values()) else 1


VAR = BENCH_DIR / "attack"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep var/bench/attack/ afterwards")
    args = parser.parse_args()
    shutil.rmtree(VAR, ignore_errors=True)
    comptoir = start_comptoir(VAR, {})
    env = comptoir["env"]
    try:
        return asyncio.run(main_async(VAR, comptoir, env))
    finally:
        comptoir["process"].stop()
        if not args.keep:
            shutil.rmtree(VAR, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
