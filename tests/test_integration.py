"""`python -m bot up` for real: three processes, a conversation, crashes and Ctrl-C.

This is what `make run` starts. Ports are free ones and data lives in a temporary
folder, so it runs beside a developer's own instance.
"""
import asyncio
import datetime as dt
import concurrent.futures
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import pytest

from bot.core.settings import PROJECT_ROOT
from bot.ops.rasa_server import SESSION_WINDOW_TURNS
from bot.web.conversation import REPLY_ACTIONS_DOWN, REPLY_RASA_DOWN
from tests.conftest import (TELEGRAM_TEST_TOKEN, free_port, free_ports, redis_server,
                            temporary_postgres_database)

pytestmark = pytest.mark.slow
STOCK_TOKEN = "integration-stock-token"
TILL_TOKEN = "integration-till-token"


class Stack:
    def __init__(self, tmp_path, extra_env=None):
        extra_env = extra_env or {}
        replicas = int(extra_env.get("RASA_REPLICAS", 1))
        self.ports = {"GATEWAY_PORT": free_port(), "RASA_PORT": free_ports(replicas),
                      "ACTION_PORT": free_port()}
        inherited = {k: v for k, v in os.environ.items() if k not in (
            "DATABASE_URL", "TRACKER_STORE_URL", "LOCK_STORE_URL", "RASA_TOKEN", "RASA_REPLICAS")}
        self.env = {**inherited, **{k: str(v) for k, v in self.ports.items()},
                    "COMPTOIR_VAR_DIR": str(tmp_path / "var"),
                    "COMPTOIR_MODELS_DIR": str(PROJECT_ROOT / "models"),
                    "STOCK_API_TOKEN": STOCK_TOKEN, "TILL_API_TOKEN": TILL_TOKEN, **extra_env}
        self.url = f"http://127.0.0.1:{self.ports['GATEWAY_PORT']}"
        self.replicas = replicas
        var = Path(self.env["COMPTOIR_VAR_DIR"])
        self.shop_url = self.env.get("DATABASE_URL", f"sqlite:///{var / 'shop.db'}")
        self.trackers_url = self.env.get("TRACKER_STORE_URL", f"sqlite:///{var / 'trackers.db'}")
        self.lines = []
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "up"], cwd=PROJECT_ROOT,
                                     env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

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


@pytest.fixture(scope="module")
def telegram(backend):
    """A fresh stand-in for Telegram's Bot API for each set-up (tests/fake_telegram.py)."""
    from tests.fake_telegram import FakeBotAPI

    server = FakeBotAPI().start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres-redis-2-replicas"])
def backend(request, tmp_path_factory):
    """Every test of this module runs on both set-ups: the embedded one (SQLite, one Rasa)
    and the scale-out one (PostgreSQL shop database and tracker store, Redis lock store,
    two Rasa replicas). The second uses the machine's PostgreSQL and Redis (or a private
    redis-server) and is skipped, saying why, where they cannot be had."""
    if request.param == "sqlite":
        yield {}
        return
    with temporary_postgres_database() as shop_db, temporary_postgres_database() as trackers, \
            redis_server(tmp_path_factory.mktemp("redis")) as redis_url:
        yield {"DATABASE_URL": shop_db, "TRACKER_STORE_URL": trackers, "LOCK_STORE_URL": redis_url,
               "RASA_REPLICAS": "2"}


@pytest.fixture(scope="module")
def stack(trained_model, tmp_path_factory, telegram, backend):
    stack = Stack(tmp_path_factory.mktemp("stack"), {"TELEGRAM_BOT_TOKEN": TELEGRAM_TEST_TOKEN,
                                                     "TELEGRAM_API_URL": telegram.url,
                                                     "SUPPORT_HOURS": "lun-dim 00:00-00:00",
                                                     **backend})
    try:
        stack.wait_for_line(r"Comptoir is ready", timeout=600)
        yield stack
    finally:
        if stack.proc.poll() is None:  # a failed test: still stop all three
            stack.proc.send_signal(signal.SIGINT)
            try:
                stack.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stack.proc.kill()


def test_start_uses_the_cached_model_and_reports_healthy(stack):
    assert "cache hit, no training" in stack.output
    status, body = stack.health()
    assert status == 200
    assert {c["status"] for c in body["components"].values()} == {"up"}
    assert body["components"]["rasa"]["replicas_up"] == f"{stack.replicas}/{stack.replicas}"
    endpoints = (Path(stack.env["COMPTOIR_VAR_DIR"]) / "endpoints.yml").read_text()
    if stack.replicas > 1:
        assert "type: redis" in endpoints and "dialect: postgresql" in endpoints
        assert stack.pid("rasa") != stack.pid("rasa-2")
    else:
        assert "type: in_memory" in endpoints and "dialect: sqlite" in endpoints


def sender_on_replica(prefix, replica):
    """A sender id the gateway sends to this replica first (crc32 of the id)."""
    return next(f"{prefix}-{i}" for i in range(100) if zlib.crc32(f"{prefix}-{i}".encode()) % 2 == replica)


def test_a_conversation_keeps_its_context_across_replicas(stack):
    if stack.replicas < 2:
        pytest.skip("one Rasa replica in this set-up")
    sender = sender_on_replica("replicas-ctx", 0)
    assert "quelle taille" in texts(stack.say(sender, "vous avez les pegasus 41 homme ?"))
    # Its replica dies: the other one takes the conversation from the shared tracker
    # store, with its context.
    rasa_pid, mark = stack.pid("rasa"), len(stack.lines)
    os.kill(rasa_pid, signal.SIGKILL)
    answer = texts(stack.say(sender, "en 42 noir a lyon part dieu"))
    assert "Lyon Part-Dieu" in answer and "Pegasus 41" in answer
    stack.pid("rasa", after=mark)  # restarted by the supervisor
    stack.wait_healthy()


async def test_messages_sent_back_to_back_are_answered_in_order(stack):
    """A widget sends eight messages without waiting for answers; one socket keeps their
    order on the way in, so the answers and the conversation must keep it too."""
    cities = ("Lille", "Nice", "Rennes", "Metz", "Dijon", "Brest", "Reims", "Tours")
    messages = [f"horaires de {city}" for city in cities]
    client, session_id, events = await web_chat(stack)
    for message in messages:
        await client.emit("user_uttered", {"message": message, "session_id": session_id})
    answered = []  # the city each answer is about, in the order the answers came
    while len(answered) < len(cities):
        text = (await next_of(events, "bot_uttered", timeout=60)).get("text") or ""
        answered += [city for city in cities if city in text][:1]  # an image or a button: none
    await client.eio.disconnect(abort=True)
    assert answered == list(cities)
    assert tracker_user_texts(stack, session_id) == messages  # none lost, none twice, in order


def test_greeting_and_store_hours(stack):
    greeting = stack.say("client-1", "bonjour")
    assert greeting[0]["recipient_id"] == "client-1"
    assert "Bonjour" in greeting[0]["text"] and "stock" in greeting[0]["text"]
    assert greeting[0]["buttons"]

    lille = texts(stack.say("client-1", "horaires du magasin de lille svp"))
    assert "Lille Centre — 31 rue Neuve, 59000 Lille" in lille

    assert "Pour quel magasin" in texts(stack.say("client-2", "vous etes ouverts dimanche ?"))
    assert "Bordeaux Sainte-Catherine" in texts(stack.say("client-2", "Bordeaux"))


def test_stock_question_size_hold_and_cancel(stack):
    first = stack.say("shopper-1", "slt vous avez les pegasus 41 homme ?")
    assert "quelle taille" in texts(first)
    answer = texts(stack.say("shopper-1", "en 42 noir a lyon part dieu"))
    assert "Nike Pegasus 41 homme (42, noir)" in answer
    assert "À Lyon Part-Dieu : en stock." in answer
    held = texts(stack.say("shopper-1", "mettez le moi de côté svp"))
    assert held.startswith("C'est fait : 1 × Nike Pegasus 41 homme (42, noir) vous attend à "
                           "Lyon Part-Dieu")
    code = re.search(r"code de retrait : ([A-Z0-9]{6})", held).group(1)
    cancelled = texts(stack.say("shopper-1", "finalement annulez ma réservation"))
    assert f"Votre réservation {code}" in cancelled and "est annulée" in cancelled


def test_the_three_text_messages_of_the_nlu_brief(stack):
    """"slt vs avez les nike pegasus en 42 a lyon svp", "jvoudrais plus recevoir vos sms",
    "c mon anniv jai droit a koi": each reaches its capability, nothing said is asked again."""
    choices = stack.say("sms-1", "slt vs avez les nike pegasus en 42 a lyon svp")
    men = next(b for b in choices[0]["buttons"] if b["title"] == "Nike Pegasus 41 homme")
    assert "quelle couleur" in texts(stack.say("sms-1", men["payload"]))  # 42 is remembered
    answer = texts(stack.say("sms-1", "noir"))
    assert answer.startswith("Nike Pegasus 41 homme (42, noir)") and "À Lyon Part-Dieu :" in answer

    email = "justine.robert@example.org"
    assert texts(stack.say("sms-2", "jvoudrais plus recevoir vos sms")).startswith(
        "Pour arrêter les messages par SMS, je dois savoir qui vous êtes.")
    stack.say("sms-2", email)
    done = texts(stack.say("sms-2", outbox_code(stack, email)))
    assert "vous ne recevrez plus aucun message de notre part par SMS" in done

    email = "sophie.bernard@example.org"
    assert texts(stack.say("sms-3", "c mon anniv jai droit a koi")).startswith("Pour protéger vos données")
    stack.say("sms-3", email)
    offer = stack.say("sms-3", outbox_code(stack, email))
    assert "Merci Sophie" in texts(offer) and "anniversaire" in texts(offer[1:])


def test_buttons_payloads_work_through_the_gateway(stack):
    choices = stack.say("shopper-2", "vous avez les Pegasus 41 ?")
    buttons = choices[0]["buttons"]
    assert [b["title"] for b in buttons] == ["Nike Pegasus 41 homme", "Nike Pegasus 41 femme"]
    sizes = stack.say("shopper-2", buttons[1]["payload"])
    assert "Nike Pegasus 41 femme : quelle taille" in texts(sizes)
    size_38 = next(b for b in sizes[0]["buttons"] if b["title"] == "38")
    colours = stack.say("shopper-2", size_38["payload"])
    assert "Nike Pegasus 41 femme en 38 : quelle couleur" in texts(colours)
    black = next(b for b in colours[0]["buttons"] if b["title"] == "noir")
    assert "Nike Pegasus 41 femme (38, noir) — 140 €" in texts(stack.say("shopper-2", black["payload"]))


def test_nearest_store_from_a_telegram_location(stack):
    stack.say("shopper-3", "vous avez la tondeuse bosch rotak ?")
    reply = stack.say("shopper-3", "quel magasin près de chez moi l'a ?",
                      metadata={"location": {"latitude": 45.77, "longitude": 4.89}})
    assert "près de votre position" in texts(reply)


def test_back_in_stock_alert_is_delivered_once_after_a_stock_update(stack):
    stack.say("shopper-4", "hoka speedgoat 6 femme en 38 vert à lille")
    offer = stack.say("shopper-4", "prévenez-moi quand il revient")
    here = next(b for b in offer[0]["buttons"] if b["title"] == "Ici")
    assert "je vous préviens ici" in texts(stack.say("shopper-4", here["payload"]))

    status, _ = stack.post("/api/stock", {"updates": [{"sku": "x", "store": "LIL-CTR", "quantity": 1}]})
    assert status == 401
    auth = {"Authorization": f"Bearer {STOCK_TOKEN}"}
    status, body = stack.post("/api/stock", {"updates": [{"sku": "nope", "store": "LIL-CTR",
                                                          "quantity": 1}]}, auth)
    assert status == 400 and "article inconnu" in body["error"]
    sku = "P000022-03"  # Hoka Speedgoat 6 femme, 38, vert (demo catalog order)
    status, body = stack.post("/api/stock", {"updates": [{"sku": sku, "store": "LIL-CTR",
                                                          "quantity": 3}]}, auth)
    assert (status, body["alerts_queued"]) == (200, 1)
    next_turn = texts(stack.say("shopper-4", "merci"))
    assert "Bonne nouvelle : Hoka Speedgoat 6 femme (38, vert) est de retour en stock à Lille Centre" in next_turn
    assert "Bonne nouvelle" not in texts(stack.say("shopper-4", "merci"))


def sent_to(telegram, user, method="sendMessage"):
    return lambda c: c["method"] == method and int(c.get("chat_id", 0)) == user


def test_telegram_conversation_with_buttons_and_location(stack, telegram):
    user = TELEGRAM_USER
    telegram.push(telegram.user_message(user, "/start"))
    greeting = telegram.wait_for(sent_to(telegram, user))[-1]
    assert greeting["text"].startswith("Bonjour et bienvenue")
    keyboard = greeting["reply_markup"]["inline_keyboard"]
    assert ["Vérifier un stock"] in [[b["text"] for b in row] for row in keyboard]
    hours = next(b for row in keyboard for b in row if b["text"] == "Horaires d'un magasin")

    before = len(telegram.calls)
    telegram.push(telegram.button_tap(user, hours["callback_data"]))
    telegram.wait_for(lambda c: c["method"] == "answerCallbackQuery")
    asked = telegram.wait_for(lambda c: telegram.calls.index(c) >= before
                              and sent_to(telegram, user)(c))[-1]
    assert asked["text"].startswith("Pour quel magasin ?")

    before = len(telegram.calls)
    telegram.push(telegram.user_message(user, "vous avez la tondeuse bosch rotak ?"))
    telegram.wait_for(lambda c: telegram.calls.index(c) >= before and sent_to(telegram, user)(c))
    before = len(telegram.calls)
    telegram.push(telegram.user_message(user, location={"latitude": 45.77, "longitude": 4.89}))
    near = telegram.wait_for(lambda c: telegram.calls.index(c) >= before
                             and sent_to(telegram, user)(c))[-1]
    assert "près de votre position" in near["text"]


def test_telegram_survives_a_bad_update_and_receives_pushed_alerts(stack, telegram):
    user = TELEGRAM_USER + 1
    telegram.push({"edited_message": {"message_id": 5, "date": 0, "chat": {"id": user, "type": "private"}}})
    telegram.push(telegram.user_message(user, "hoka speedgoat 6 femme en 40 vert à lille"))
    telegram.wait_for(lambda c: sent_to(telegram, user)(c) and "Speedgoat" in c["text"])
    telegram.push(telegram.user_message(user, "prévenez-moi quand il revient"))
    offer = telegram.wait_for(lambda c: sent_to(telegram, user)(c) and "reply_markup" in c
                              and "Ici" in str(c["reply_markup"]))[-1]
    here = next(b for row in offer["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "Ici")
    telegram.push(telegram.button_tap(user, here["callback_data"]))
    telegram.wait_for(lambda c: sent_to(telegram, user)(c) and "je vous préviens ici" in c["text"])
    status, body = stack.post("/api/stock", {"updates": [{"sku": "P000022-05", "store": "LIL-CTR",
                                                          "quantity": 2}]},
                              {"Authorization": f"Bearer {STOCK_TOKEN}"})
    assert (status, body["alerts_queued"]) == (200, 1)
    # Pushed by the gateway without waiting for the customer to write again.
    (alert,) = telegram.wait_for(lambda c: sent_to(telegram, user)(c) and "Bonne nouvelle" in c["text"])
    assert "Hoka Speedgoat 6 femme (40, vert) est de retour en stock à Lille Centre" in alert["text"]


async def test_a_rasa_socketio_client_holds_a_conversation(stack):
    import socketio

    events = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False, request_timeout=30)
    for name in ("session_confirm", "bot_uttered", "history"):
        client.on(name, lambda data, name=name: events.put_nowait((name, data)))
    # Polling: python-engineio's websocket client needs aiohttp >= 3.10, Rasa pins 3.9.
    await client.connect(stack.url, transports=["polling"], headers={"Origin": stack.url})
    await client.emit("session_request", {"session_id": "short"})
    name, session_id = await asyncio.wait_for(events.get(), 10)
    assert name == "session_confirm" and len(session_id) >= 32 and session_id != "short"
    await client.emit("user_uttered", {"message": "bonjour", "session_id": session_id})
    name, greeting = await asyncio.wait_for(events.get(), 30)
    assert name == "bot_uttered" and greeting["text"].startswith("Bonjour et bienvenue")
    assert {"content_type": "text", "title": "Vérifier un stock",
            "payload": "/check_stock"} in greeting["quick_replies"]
    # A plain disconnect() waits out the open long-poll (about 30 s); the server notices anyway.
    await client.eio.disconnect(abort=True)

    again = socketio.AsyncClient(reconnection=False, request_timeout=30)
    again.on("session_confirm", lambda data: events.put_nowait(("session_confirm", data)))
    again.on("history", lambda data: events.put_nowait(("history", data)))
    await again.connect(stack.url, transports=["polling"], headers={"Origin": stack.url})
    await again.emit("session_request", {"session_id": session_id})
    assert await asyncio.wait_for(events.get(), 10) == ("session_confirm", session_id)
    await again.emit("history_request", {})
    name, history = await asyncio.wait_for(events.get(), 10)
    assert [m["sender"] for m in history] == ["user", "bot"]
    assert history[0]["text"] == "bonjour"
    await again.eio.disconnect(abort=True)


def test_socketio_refuses_a_foreign_origin(stack):
    """The engine.io handshake a browser on another site would make is refused (400), the
    shop's own page's is opened (200). Asserted on the HTTP exchange itself: python-engineio's
    client closes its HTTP session before reading a refusal's body and may then wait out its
    whole timeout (seen once in CI)."""
    def handshake(origin):
        request = urllib.request.Request(f"{stack.url}/socket.io/?EIO=4&transport=polling",
                                         headers={"Origin": origin})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    status, body = handshake("https://evil.example")
    assert status == 400 and "not an accepted origin" in body.lower()
    status, body = handshake(stack.url)
    assert status == 200 and '"sid"' in body


# Bad input: every one gets a polite answer or a clean 4xx, never a 500, never silence.
BAD_TEXTS = ["", "   \n\t ", "a" * 100_000, "😀🎉👟" * 5, "<script>alert('x')</script><img src=x onerror=alert(1)>",
             "'; DROP TABLE customers; --", "\" OR 1=1 --", "/unknown_intent", '/inform{"size": ',
             '/check_stock{"product": "' + "x" * 3000 + '"}', "\x00\x01\x02", "‮ RTL override", "%s%s%n"]
BAD_BODIES = [b"\xff\xfe\x00binary", b"not json", b'{"sender": "x"}', b'{"sender": 5, "message": "a"}',
              b'{"sender": "x", "message": ["a"]}', b"[]", b'{"sender": "", "message": "bonjour"}']


def test_rasa_and_the_action_server_answer_only_the_gateway(stack):
    """Any local process could post to Rasa's channel as a verified Telegram user, or call
    the actions directly: both now want a token only the supervisor's children have."""
    rasa = f"http://127.0.0.1:{stack.ports['RASA_PORT']}"
    forged = {"sender": "telegram:4242", "message": "quelles données avez-vous sur moi ?",
              "metadata": {"comptoir_channel": "telegram"}}
    actions = f"http://127.0.0.1:{stack.ports['ACTION_PORT']}/webhook"
    call = {"next_action": "action_my_data", "sender_id": "telegram:4242",
            "tracker": {"sender_id": "telegram:4242", "slots": {}, "latest_message": {}, "events": []},
            "domain": {}}
    for url, body, expected in ((f"{rasa}/webhooks/comptoir/webhook", forged, 401),
                                (f"{rasa}/webhooks/rest/webhook", forged, 404),  # no such channel
                                (actions, call, 401), (actions + "?token=guess", call, 401)):
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == expected, url
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports['ACTION_PORT']}/health", timeout=30) as health:
        assert health.status == 200  # the gateway's health check needs no token
    assert texts(stack.say("after-forgery", "bonjour")).startswith("Bonjour")  # the gateway still gets in


def test_bad_input_over_rest_gets_polite_answers_or_clean_4xx(stack):
    for index, text in enumerate(BAD_TEXTS):
        status, replies = stack.post("/webhooks/rest/webhook", {"sender": f"bad-rest-{index}", "message": text})
        assert status in (200, 400, 413), (text[:40], status)
        if status == 200:
            assert replies and all(r.get("text") or r.get("image") for r in replies), text[:40]
            assert "Traceback" not in texts(replies) and "<script>" not in texts(replies)
    for body in BAD_BODIES:
        status, answer = stack.post("/webhooks/rest/webhook", body)
        assert status == 400 and answer["error"], body
    assert stack.health()[0] == 200
    assert "Bonjour" in texts(stack.say("bad-rest-after", "bonjour"))


async def test_bad_input_over_socketio_and_the_server_stays_up(stack):
    import socketio

    events = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False, request_timeout=30)
    client.on("session_confirm", lambda data: events.put_nowait(("session_confirm", data)))
    client.on("bot_uttered", lambda data: events.put_nowait(("bot_uttered", data)))
    await client.connect(stack.url, transports=["polling"], headers={"Origin": stack.url})
    await client.emit("user_uttered", {"message": "before any session"})  # ignored, as in Rasa
    await client.emit("session_request", {"session_id": 12})
    assert (await asyncio.wait_for(events.get(), 10))[0] == "session_confirm"
    for data in ("just a string", ["a", "list"]):  # not an event at all: ignored, as in Rasa
        await client.emit("user_uttered", data)
    for data in ({"message": None}, {"message": {"nested": 1}}):  # no text: the "empty" answer
        await client.emit("user_uttered", data)
        name, answer = await asyncio.wait_for(events.get(), 30)
        assert name == "bot_uttered" and answer["text"].startswith("Je n'ai rien reçu"), answer
    for text in [t for t in BAD_TEXTS if len(t) < 60_000]:
        await client.emit("user_uttered", {"message": text})
        name, answer = await asyncio.wait_for(events.get(), 60)
        assert name == "bot_uttered" and (answer.get("text") or answer.get("attachment")), text[:40]
        with contextlib.suppress(asyncio.TimeoutError):  # a turn may answer in several bubbles
            while True:
                await asyncio.wait_for(events.get(), 1.5)
    await client.eio.disconnect(abort=True)
    # Over the 64 KB cap the server drops that connection; the session goes on over a new one.
    big, session_id, big_events = await web_chat(stack)
    dropped = asyncio.Event()
    big.on("disconnect", dropped.set)
    with contextlib.suppress(Exception):  # the client may also see its send refused
        await big.emit("user_uttered", {"message": "a" * 100_000, "session_id": session_id})
    await asyncio.wait_for(dropped.wait(), 60)
    again, resumed, events = await web_chat(stack, session_id)
    assert resumed == session_id
    assert "Bonjour" in await web_turn(again, session_id, events, "bonjour")
    await again.eio.disconnect(abort=True)
    assert stack.health()[0] == 200


def test_bad_input_over_telegram(stack, telegram):
    user = TELEGRAM_USER + 7
    for text in ["😀🎉👟", "<b>gras</b> & <i>html</i>", "'; DROP TABLE customers; --", "/inconnue",
                 "a" * 4096]:
        mark = len(telegram.calls)
        telegram.push(telegram.user_message(user, text))
        telegram.wait_for(lambda c: sent_to(telegram, user)(c) and c.get("text"), after=mark)
    mark = len(telegram.calls)
    telegram.push(telegram.user_message(user, sticker={"file_id": "s1", "file_unique_id": "u1", "type": "regular",
                                                       "width": 1, "height": 1, "is_animated": False,
                                                       "is_video": False}))
    (reply,) = telegram.wait_for(lambda c: sent_to(telegram, user)(c) and "messages écrits" in c.get("text", ""),
                                 after=mark)
    mark = len(telegram.calls)
    telegram.push(telegram.button_tap(user, "p:unknown-payload-" + "x" * 20))
    telegram.wait_for(lambda c: sent_to(telegram, user)(c) and c.get("text"), after=mark)
    assert stack.health()[0] == 200


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


def test_the_web_widget_in_a_real_browser(stack):
    shots = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(stack.url + "/")
        bot = page.locator(".cpt-bot")
        bot.first.wait_for(timeout=30000)  # the widget greets a new visitor
        assert "Bonjour et bienvenue" in bot.first.inner_text()

        page.get_by_label("Votre message").fill("bonjour")
        page.get_by_role("button", name="Envoyer").click()
        bot.nth(1).wait_for(timeout=30000)
        page.get_by_role("button", name="Horaires d'un magasin").click()
        bot.nth(2).wait_for(timeout=30000)
        assert bot.nth(2).inner_text().endswith("Pour quel magasin ? Indiquez-moi la ville, par exemple Lille ou Lyon.")
        assert page.locator(".cpt-user").nth(1).inner_text().endswith("Horaires d'un magasin")

        attack = "<img src=x onerror=alert(1)>"
        page.get_by_label("Votre message").fill(attack)
        page.keyboard.press("Enter")
        bot.nth(3).wait_for(timeout=30000)
        assert page.locator(".cpt-user").nth(2).inner_text().endswith(attack)
        assert page.locator(".cpt-log img").count() == 0
        count = page.locator(".cpt-msg").count()

        page.reload()
        page.locator(".cpt-msg").nth(count - 1).wait_for(timeout=30000)
        assert page.locator(".cpt-msg").count() == count
        assert page.locator(".cpt-user").nth(2).inner_text().endswith(attack)
        page.screenshot(path=str(shots / "webchat.png"), full_page=True)
        assert dialogs == []
        browser.close()


AGENT_PASSWORD = "console password 2026"


@pytest.fixture(scope="module")
def agent(stack):
    result = subprocess.run([sys.executable, "-m", "bot", "agents", "add", "claire", "--name", "Claire",
                             "--password-stdin"], input=AGENT_PASSWORD + "\n", text=True,
                            capture_output=True, cwd=PROJECT_ROOT, env=stack.env, timeout=120)
    assert result.returncode == 0, result.stderr
    return "claire"


async def console_session(stack, username):
    import aiohttp

    # unsafe=True: aiohttp keeps no cookies for IP addresses otherwise.
    session = aiohttp.ClientSession(base_url=stack.url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = await (await session.get("/console")).text()
    form_token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = await session.post("/console/login", data={
        "csrf": form_token, "username": username, "password": AGENT_PASSWORD})
    assert response.status == 200
    return session, (await response.json())["csrf"]


def test_triggers_two_misunderstandings_offer_a_person(stack):
    first = texts(stack.say("lost-1", "quel temps fera-t-il demain à Brest ?"))
    assert "je ne peux pas vous aider sur ce sujet" in first
    offer = stack.say("lost-1", "qui va gagner la coupe du monde ?")
    assert "Voulez-vous qu'un conseiller prenne le relais ?" in texts(offer)
    assert offer[0]["buttons"][0]["payload"] == "/request_human"


def test_a_product_we_do_not_carry_is_said_plainly_with_a_person_to_ask(stack):
    replies = stack.say("unknown-1", "Bonjour, est-ce que vous avez le parfum Chloé Nomade en stock ?")
    assert texts(replies).startswith("Nous ne vendons pas")
    assert "/request_human" in [b["payload"] for r in replies for b in r.get("buttons") or []]


def test_a_promo_code_question_gets_what_can_really_be_had_never_a_code(stack):
    from bot.offers.vouchers import VOUCHER_RE

    answer = texts(stack.say("promo-1", "Bonjour, auriez-vous un code promo pour ma prochaine visite ?"))
    assert answer.startswith("Je n'ai pas de code promo à vous donner ici")
    assert "carte de fidélité est gratuite" in answer and not VOUCHER_RE.search(answer)


def test_an_order_question_says_where_to_go_and_offers_a_person(stack):
    replies = stack.say("orders-1", "Bonjour, ma commande n° 45521 n'est toujours pas livrée, où en est mon colis ?")
    assert "Je ne m'occupe pas des commandes ici" in texts(replies)
    assert "https://www.comptoir.example/aide/commandes" in texts(replies)
    assert replies[0]["buttons"][0]["payload"] == "/request_human"


HESITANT = ("pegasus ou bien ?", "les pegasus de côté ou pas", "et les pegasus du coup")


def test_an_unsure_guess_gets_a_clarifying_question_whose_buttons_go_on(stack):
    """Short messages the model hesitates on (no intent above the fallback's threshold).
    Which intents it hesitates between moves with each retraining, so the first of a few
    that offers the stock question is used. The button goes on as if understood, with the
    product said; "Autre chose" is a second miss, which offers a person."""
    from bot.assistant.fallback import CHOICES

    for index, message in enumerate(HESITANT):
        asked = stack.say(f"unsure-{index}", message)
        if texts(asked) != "Je ne suis pas sûr d'avoir bien compris. Vous voulez dire… ?":
            continue  # understood outright by this model
        buttons = {b["title"]: b["payload"] for b in asked[0]["buttons"]}
        assert set(buttons) - {"Autre chose"} <= set(CHOICES.values()) and buttons["Autre chose"] == "/nlu_fallback"
        if "Savoir si un article est en stock" in buttons:
            break
    else:
        raise AssertionError("no hesitant message got a clarifying question offering the stock question")
    assert buttons["Savoir si un article est en stock"] == '/check_stock{"product":"pegasus"}'
    chosen = stack.say(f"unsure-{index}", buttons["Savoir si un article est en stock"])
    assert "Nike Pegasus 41 homme" in [b["title"] for r in chosen for b in r.get("buttons") or []]

    stack.say("unsure-other", message)
    other = stack.say("unsure-other", "/nlu_fallback")
    assert "Voulez-vous qu'un conseiller prenne le relais ?" in texts(other)


def test_an_upset_customer_is_handed_over_with_an_apology(stack):
    answer = texts(stack.say("upset-1", "ça marche pas votre truc, c'est nul"))
    assert answer.startswith("Je suis désolé pour ce désagrément. Je vous passe un conseiller")


async def test_handover_between_a_web_customer_and_an_agent(stack, agent):
    import socketio

    customer_events = asyncio.Queue()
    customer = socketio.AsyncClient(reconnection=False, request_timeout=30)
    customer.on("session_confirm", lambda data: customer_events.put_nowait(("confirm", data)))
    customer.on("bot_uttered", lambda data: customer_events.put_nowait(("bot", data)))
    await customer.connect(stack.url, transports=["polling"], headers={"Origin": stack.url})
    await customer.emit("session_request", {})
    _, session_id = await asyncio.wait_for(customer_events.get(), 10)

    async def customer_says(text):
        await customer.emit("user_uttered", {"message": text, "session_id": session_id})

    await customer_says("je cherche les pegasus 41 homme")
    await asyncio.wait_for(customer_events.get(), 30)
    await customer_says("je veux parler à un conseiller")
    _, handed = await asyncio.wait_for(customer_events.get(), 30)
    assert handed["text"].startswith("Je vous passe un conseiller : vous êtes n°")

    http, csrf = await console_session(stack, agent)
    ws = await http.ws_connect("/console/ws", origin=stack.url)
    queue = (await ws.receive_json())["tickets"]
    ticket = next(t for t in queue if t["channel"] == "web" and t["status"] == "open"
                  and t["reason"] == "demande du client")
    await ws.send_json({"csrf": csrf, "ticket_id": ticket["id"], "action": "claim"})

    async def agent_event(kind):
        while True:
            event = await asyncio.wait_for(ws.receive_json(), 30)
            if event["type"] == kind:
                return event

    assert (await agent_event("result"))["ok"] is True
    response = await http.get(f"/console/api/tickets/{ticket['id']}")
    view = await response.json()
    assert response.status == 200, view
    assert view["summary"]["last_customer_messages"][-1] == "je veux parler à un conseiller"
    assert view["summary"]["product"] == "Nike Pegasus 41 homme (P000001)"
    assert "request_human" in view["summary"]["intents"]
    assert view["profile"] is None and view["verified"] is False

    await customer_says("ma taille est le 42, vous l'avez à Lille ?")
    message = await agent_event("message")
    assert (message["author"], message["text"]) == ("customer", "ma taille est le 42, vous l'avez à Lille ?")
    with pytest.raises(asyncio.TimeoutError):  # the bot stays quiet while a person answers
        await asyncio.wait_for(customer_events.get(), 3)

    await ws.send_json({"csrf": csrf, "ticket_id": ticket["id"], "action": "reply",
                        "text": "Bonjour, je regarde le stock de Lille pour vous."})
    _, reply = await asyncio.wait_for(customer_events.get(), 10)
    assert reply == {"text": "Bonjour, je regarde le stock de Lille pour vous."}

    note = await http.post(f"/console/api/tickets/{ticket['id']}/note",
                           json={"text": "client patient"}, headers={"X-CSRF-Token": csrf})
    assert (await note.json())["ok"] is True
    back = await http.post(f"/console/api/tickets/{ticket['id']}/handback",
                           headers={"X-CSRF-Token": csrf})
    assert (await back.json())["ok"] is True
    _, resumed = await asyncio.wait_for(customer_events.get(), 10)
    assert resumed["text"].startswith("Je reprends la main")

    await customer_says("bonjour")
    _, greeting = await asyncio.wait_for(customer_events.get(), 30)
    assert greeting["text"].startswith("Bonjour et bienvenue")

    history = [m["text"] for m in await stack_history(stack, session_id)]
    assert "Bonjour, je regarde le stock de Lille pour vous." in history  # recorded in Rasa
    view = await (await http.get(f"/console/api/tickets/{ticket['id']}")).json()
    assert [(m["author"], m["text"]) for m in view["messages"]] == [
        ("customer", "ma taille est le 42, vous l'avez à Lille ?"),
        ("agent", "Bonjour, je regarde le stock de Lille pour vous.")]
    assert view["notes"][0]["text"] == "client patient"
    await ws.close()
    await http.close()
    await customer.eio.disconnect(abort=True)


async def test_a_verified_customers_transcript_reaches_only_the_claiming_agent_masked(stack, agent):
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.shop_url, future=True)
    with engine.connect() as connection:
        email, phone = connection.execute(text(
            "SELECT email, phone FROM customers WHERE id = 7")).one()
    sender = "need-to-know-1"
    stack.say(sender, "quelles données avez-vous sur moi ?")
    stack.say(sender, email)
    assert email in texts(stack.say(sender, outbox_code(stack, email)))
    assert "/exports/" in texts(stack.say(sender, "je veux exporter mes données"))
    assert "conseiller" in texts(stack.say(sender, "je veux parler à un conseiller"))

    http, csrf = await console_session(stack, agent)
    queue = (await (await http.get("/console/api/queue")).json())["tickets"]
    ticket_id = max(t["id"] for t in queue if t["status"] == "open")
    assert (await http.get(f"/console/api/tickets/{ticket_id}")).status == 403  # not claimed yet
    claimed = await http.post(f"/console/api/tickets/{ticket_id}/claim", headers={"X-CSRF-Token": csrf})
    assert (await claimed.json())["ok"] is True
    body = await (await http.get(f"/console/api/tickets/{ticket_id}")).text()
    view = json.loads(body)
    assert view["verified"] is True
    shown = "\n".join(m["text"] for m in view["transcript"])
    assert "quelles données avez-vous sur moi ?" in shown and "[lien d'export]" in shown
    for secret in (email, phone, "/exports/"):
        assert secret not in body, secret
    with engine.connect() as connection:
        kinds = connection.execute(text("SELECT kind FROM data_access_log WHERE ticket_id = :t"),
                                   {"t": ticket_id}).scalars().all()
    engine.dispose()
    assert sorted(kinds) == ["profile", "transcript"]
    await http.post(f"/console/api/tickets/{ticket_id}/close", headers={"X-CSRF-Token": csrf})
    await http.close()


async def web_chat(stack, session_id=None):
    """A widget-like socket.io client: (client, confirmed session id, event queue)."""
    import socketio

    events = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False, request_timeout=30)
    for name in ("session_confirm", "bot_uttered", "history"):
        client.on(name, lambda data, name=name: events.put_nowait((name, data)))
    await client.connect(stack.url, transports=["polling"], headers={"Origin": stack.url})
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


async def test_a_reload_replays_no_personal_data_after_logout_and_an_old_session_id_expires(stack):
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.shop_url, future=True)
    with engine.connect() as connection:
        email = connection.execute(text("SELECT email FROM customers WHERE id = 8")).scalar_one()
    client, session_id, events = await web_chat(stack)
    for message in ("quelles données avez-vous sur moi ?", email):
        await web_turn(client, session_id, events, message)
    assert email in await web_turn(client, session_id, events, outbox_code(stack, email))
    await client.emit("history_request", {})
    shown = [m["text"] for m in await next_of(events, "history")]
    assert any(email in text for text in shown)  # verified: their own data, on a reload
    assert "n'est plus liée" in await web_turn(client, session_id, events, "déconnectez-moi")
    await client.emit("history_request", {})
    shown = [m["text"] for m in await next_of(events, "history")]
    assert "[message masqué]" in shown and not any(email in text for text in shown)
    await client.eio.disconnect(abort=True)

    with engine.begin() as connection:  # eight days without a message
        connection.execute(text("UPDATE chat_identities SET last_seen_at = :old WHERE external_id = :s"),
                           {"old": dt.datetime.utcnow() - dt.timedelta(days=8), "s": session_id})
    engine.dispose()
    client, renewed, events = await web_chat(stack, session_id)
    assert renewed != session_id
    await client.emit("history_request", {})
    assert await next_of(events, "history") == []
    await client.eio.disconnect(abort=True)


async def test_a_long_web_conversation_is_replayed_whole(stack):
    """Past SESSION_WINDOW_TURNS messages Rasa goes on in a new session (bot/ops/rasa_server.py):
    the shopper still sees the whole conversation on a reload."""
    import aiohttp

    client, session_id, events = await web_chat(stack)
    first = "bonsoir"
    assert "Bonjour" in await web_turn(client, session_id, events, first)
    for turn in range(SESSION_WINDOW_TURNS + 1):
        said = await web_turn(client, session_id, events, "merci beaucoup" if turn % 2 else "bonjour")
        assert said, f"no answer at turn {turn + 2}"
    await client.emit("history_request", {})
    shown = [m for m in await next_of(events, "history") if m["sender"] == "user"]
    assert len(shown) == SESSION_WINDOW_TURNS + 2 and shown[0]["text"] == first
    async with aiohttp.ClientSession() as session:
        async with session.get(stack.tracker_url(session_id)) as response:
            starts = [e for e in (await response.json())["events"] if e["event"] == "session_started"]
    assert len(starts) == 2 and starts[1]["metadata"].get("comptoir_continued")
    await client.eio.disconnect(abort=True)


async def stack_history(stack, session_id):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(stack.tracker_url(session_id)) as response:
            events = (await response.json())["events"]
    return [{"text": e.get("text")} for e in events if e["event"] == "bot"]


def test_console_in_a_browser_reaches_the_customer_page(stack, agent):
    shots = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        shopper = browser.new_context().new_page()
        shopper.goto(stack.url + "/")
        shopper.locator(".cpt-bot").first.wait_for(timeout=30000)
        shopper.get_by_label("Votre message").fill("un humain svp")
        shopper.keyboard.press("Enter")
        shopper.locator(".cpt-bot", has_text="Je vous passe un conseiller").wait_for(timeout=30000)

        console = browser.new_context().new_page()
        console.goto(stack.url + "/console")
        console.get_by_label("Identifiant").fill(agent)
        console.get_by_label("Mot de passe").fill(AGENT_PASSWORD)
        console.get_by_role("button", name="Se connecter").click()
        ticket = console.locator(".ticket", has_text="demande du client").filter(
            has=console.get_by_role("button", name="Prendre en charge")).last
        ticket.get_by_role("button", name="Prendre en charge").click()
        console.get_by_text("Client non vérifié").wait_for(timeout=15000)
        console.get_by_label("Réponse au client").fill("Bonjour, ici Claire du service client.")
        console.get_by_role("button", name="Envoyer").click()
        shopper.locator(".cpt-bot", has_text="ici Claire du service client").wait_for(timeout=15000)
        console.locator(".from-agent", has_text="ici Claire").wait_for(timeout=15000)
        console.screenshot(path=str(shots / "console.png"), full_page=True)
        browser.close()


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


def test_birthday_voucher_with_its_image_then_used_at_a_till(stack):
    """Camille Martin's birthday is the seeding day, which is today for this stack."""
    from bot.offers.vouchers import VOUCHER_RE

    email, sender = "camille.martin@example.org", "birthday-1"
    asked = texts(stack.say(sender, "c'est mon anniversaire, j'ai droit à un cadeau ?"))
    assert asked.startswith("Pour protéger vos données") and "Camille" not in asked
    stack.say(sender, email)
    replies = stack.say(sender, outbox_code(stack, email))
    code = VOUCHER_RE.search(texts(replies)).group(0)
    assert "les vêtements et accessoires de running" in texts(replies)  # she runs, and agreed
    [image] = [r["image"] for r in replies if r.get("image")]
    assert image.startswith(stack.url + f"/vouchers/{code}/")
    with urllib.request.urlopen(image, timeout=30) as response:
        assert response.headers["Content-Type"] == "image/png"
        assert response.read().startswith(b"\x89PNG")
    with pytest.raises(urllib.error.HTTPError) as forged:
        urllib.request.urlopen(image.replace(code, "ANNIV-AAAA-AAAA"), timeout=30)
    assert forged.value.code == 404
    assert code in texts(stack.say(sender, "mon bon d'anniversaire ?"))  # the same one, again
    # A birthday email may have left on the day (outside quiet hours): hers carries that
    # code. (Other members born near the seeding day get theirs, with their own codes.)
    outbox = Path(stack.env["COMPTOIR_VAR_DIR"]) / "outbox"
    to_her = [path.read_text() for path in outbox.glob("*email*.txt")]
    to_her = [sent for sent in to_her if sent.startswith(f"To: {email}\n")]
    assert {found for sent in to_her for found in VOUCHER_RE.findall(sent)} <= {code}

    till = {"Authorization": f"Bearer {TILL_TOKEN}"}
    assert stack.post(f"/api/vouchers/{code}/use", {"store": "LYS-PDI"})[0] == 401
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # four tills scan it at once
        results = sorted(pool.map(lambda store: stack.post(f"/api/vouchers/{code}/use", {"store": store}, till),
                                  ("LYS-PDI", "PAR-RIV", "LIL-CTR", "WEB")), key=lambda result: result[0])
    assert [(status, body.get("status")) for status, body in results][0] == (200, "used_now")
    assert [status for status, _ in results[1:]] == [409, 409, 409]
    assert all(body["reason"].startswith("Ce bon a déjà été utilisé le") for _, body in results[1:])
    assert "déjà utilisé votre bon anniversaire" in texts(stack.say(sender, "c'est mon anniversaire"))


def test_stop_in_the_middle_of_a_stock_question(stack):
    assert "quelle taille" in texts(stack.say("stopper-1", "vous avez les pegasus 41 homme ?"))
    stopped = texts(stack.say("stopper-1", "STOP"))
    assert stopped.startswith("C'est noté : vous ne recevrez plus aucun message de notre part")


def test_data_rights_end_to_end_with_the_code_from_the_outbox(stack):
    email, phone = "julien.moreau@example.org", "+33639980002"
    sender = "rights-1"
    asked = texts(stack.say(sender, "quelles données avez-vous sur moi ?"))
    assert asked.startswith("Pour protéger vos données") and "Julien" not in asked
    sent = texts(stack.say(sender, email))
    assert "un code à 6 chiffres vient d'être envoyé" in sent
    summary = texts(stack.say(sender, outbox_code(stack, email)))
    assert "Merci Julien, c'est bien vous." in summary
    assert f"• Contact : {email}, {phone}" in summary

    link = re.search(r"(/exports/\S+)", texts(stack.say(sender, "je veux exporter mes données"))).group(1)
    with urllib.request.urlopen(stack.url + link, timeout=30) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    exported = json.loads(archive.read("export.json"))
    assert exported["profile"][0]["email"] == email
    assert "quelles données avez-vous sur moi ?" in [m["text"] for m in exported["conversations"][sender]]

    first = stack.say(sender, "supprimez mes données")
    second = stack.say(sender, first[0]["buttons"][0]["payload"])
    assert "Dernière confirmation" in texts(second)
    done = texts(stack.say(sender, second[0]["buttons"][0]["payload"]))
    assert done.startswith("C'est fait : vos données personnelles sont supprimées.")
    for needle in (email, phone, "800000000002", sender):
        assert text_found(stack.shop_url, needle) is None, needle
        assert text_found(stack.trackers_url, needle) is None, needle
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(stack.url + link, timeout=30)
    assert gone.value.code == 410  # the link died with the data


RECORDS = ("reservations", "consent_ledger", "consents", "vouchers", "birthday_pushes",
           "handover_tickets", "ticket_messages", "ticket_notes", "privacy_requests", "stock_alerts")


def record_counts(stack):
    """How many rows each kind of customer record has in the shop database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.shop_url, future=True)
    try:
        with engine.connect() as connection:
            return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                    for table in RECORDS}
    finally:
        engine.dispose()


def tracker_user_texts(stack, sender):
    """What the customer said, as the (shared) tracker store has it."""
    with urllib.request.urlopen(stack.tracker_url(sender), timeout=30) as response:
        return [e["text"] for e in json.loads(response.read())["events"] if e["event"] == "user"]


class SteadyCustomer(threading.Thread):
    """A customer who keeps writing, one unique message at a time, while processes die."""

    def __init__(self, stack, sender):
        super().__init__(daemon=True)
        self.stack, self.sender = stack, sender
        self.sent, self.answered = [], []
        self.done = threading.Event()

    def run(self):
        cities = ("Lille", "Nice", "Rennes", "Metz", "Dijon", "Brest", "Tours", "Reims")
        while not self.done.is_set():
            message = f"horaires de {cities[len(self.sent) % len(cities)]} n°{len(self.sent)}"
            self.sent.append(message)
            try:
                status, replies = self.stack.post("/webhooks/rest/webhook",
                                                  {"sender": self.sender, "message": message})
            except OSError:  # the gateway itself is down
                status, replies = 0, []
            if status == 200 and texts(replies) not in ("", REPLY_RASA_DOWN, REPLY_ACTIONS_DOWN):
                self.answered.append(message)
            time.sleep(0.3)

    def wait_answers(self, count, timeout=120):
        """Until `count` more messages have been answered."""
        target, deadline = len(self.answered) + count, time.monotonic() + timeout
        while len(self.answered) < target:
            assert time.monotonic() < deadline, f"{len(self.answered)} answered of {len(self.sent)} sent"
            time.sleep(0.1)


def kill(stack, name):
    """kill -9 every process called `name` (all Rasa replicas for "rasa"); wait for restarts."""
    names = [name] + ([f"rasa-{i}" for i in range(2, stack.replicas + 1)] if name == "rasa" else [])
    pids = {n: stack.current_pid(n) for n in names}
    mark = len(stack.lines)
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    return lambda: [stack.pid(n, after=mark) for n in names]


async def handled_and_waiting_tickets(stack, agent):
    """A ticket an agent claimed, answered, annotated and handed back, and one waiting."""
    stack.say("crash-handled", "je veux parler à un conseiller")
    http, csrf = await console_session(stack, agent)
    queue = (await (await http.get("/console/api/queue")).json())["tickets"]
    handled = max(t["id"] for t in queue if t["status"] == "open")
    for action, text in (("claim", None), ("reply", "Je regarde pour vous."), ("note", "client patient")):
        done = await http.post(f"/console/api/tickets/{handled}/{action}", json={"text": text},
                               headers={"X-CSRF-Token": csrf})
        assert (await done.json())["ok"] is True, action
        if action == "claim":
            stack.say("crash-handled", "vous êtes là ?")  # goes to the agent, not the bot
    back = await http.post(f"/console/api/tickets/{handled}/handback", headers={"X-CSRF-Token": csrf})
    assert (await back.json())["ok"] is True
    stack.say("crash-waiting", "je veux parler à un conseiller")
    queue = (await (await http.get("/console/api/queue")).json())["tickets"]
    waiting = max(t["id"] for t in queue if t["status"] == "open")
    await http.close()
    return handled, waiting


def test_bot_up_survives_crashes_and_stops_cleanly(stack, agent, tmp_path):
    """kill -9 of the action server, of Rasa (every replica), then of the gateway, in the
    middle of conversations: they go on where they were, and no customer message or record
    (hold, consent, voucher, ticket...) is lost or written twice."""
    assert "Bonjour" in texts(stack.say("crash-client", "bonjour"))
    assert "Lille" in texts(stack.say("crash-client", "horaires du magasin de lille svp"))
    handled, waiting = asyncio.run(handled_and_waiting_tickets(stack, agent))
    before = record_counts(stack)
    steady = SteadyCustomer(stack, "steady-1")
    steady.start()
    steady.wait_answers(3)
    assert "quelle taille" in texts(stack.say("crash-shopper", "vous avez les pegasus 41 homme ?"))

    # The action server dies: a polite message, then it is back by itself.
    restarted = kill(stack, "actions")
    assert texts(stack.say("crash-client", "horaires de Nice")) == REPLY_ACTIONS_DOWN
    restarted()
    stack.wait_healthy()
    assert "Nice Masséna" in texts(stack.say("crash-client", "horaires de Nice"))

    # Rasa dies: a polite message; after its restart the conversations are still there.
    restarted = kill(stack, "rasa")
    assert texts(stack.say("crash-client", "bonjour")) == REPLY_RASA_DOWN
    restarted()
    stack.wait_healthy()
    said = tracker_user_texts(stack, "crash-client")
    assert said[:2] == ["bonjour", "horaires du magasin de lille svp"]
    assert "Bonjour" in texts(stack.say("crash-client", "bonjour"))
    answer = texts(stack.say("crash-shopper", "en 42 noir a lyon part dieu"))  # the size asked before
    assert "Nike Pegasus 41 homme (42, noir)" in answer and "Lyon Part-Dieu" in answer
    held = texts(stack.say("crash-shopper", "mettez le moi de côté svp"))
    code = re.search(r"code de retrait : ([A-Z0-9]{6})", held).group(1)

    # The gateway dies: tickets, their messages and notes are still there after its restart.
    restarted = kill(stack, "gateway")
    restarted()
    stack.wait_healthy()
    assert f"Votre réservation {code}" in texts(stack.say("crash-shopper", "finalement annulez ma réservation"))
    steady.wait_answers(3)
    steady.done.set()
    steady.join(timeout=60)

    # Nothing lost, nothing twice: the one hold made meanwhile is the only new record...
    after = record_counts(stack)
    assert after == {**before, "reservations": before["reservations"] + 1}
    # ...and every message the steady customer had an answer to is in the conversation
    # once, in the order sent (one cut off by a kill may or may not be there, never twice).
    said = tracker_user_texts(stack, "steady-1")
    assert len(said) == len(set(said))
    assert [m for m in said if m in steady.answered] == steady.answered
    assert [m for m in steady.sent if m in said] == said

    async def tickets_after_restart():
        http, _csrf = await console_session(stack, agent)
        queue = (await (await http.get("/console/api/queue")).json())["tickets"]
        ended = await (await http.get(f"/console/api/tickets/{handled}")).json()
        await http.close()
        return queue, ended

    queue, ended = asyncio.run(tickets_after_restart())
    assert waiting in [t["id"] for t in queue]  # still waiting
    assert ended["status"] == "handed_back"
    assert [(m["author"], m["text"]) for m in ended["messages"]] == [
        ("customer", "vous êtes là ?"), ("agent", "Je regarde pour vous.")]
    assert [n["text"] for n in ended["notes"]] == ["client patient"]

    # Rasa's API is never open without its token.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(
            f"http://127.0.0.1:{stack.ports['RASA_PORT']}/conversations/crash-client/tracker",
            timeout=10)
    assert refused.value.code == 401

    # Logs carry ids, intents and timings: never what a customer wrote, nor an email, a
    # phone, a card number, a voucher code or an export link of the whole run.
    logged = stack.output
    assert "horaires du magasin de lille" not in logged.lower()
    leaks = {kind: sorted(set(re.findall(pattern, logged))) for kind, pattern in (
        ("email", r"[\w.+-]+@(?:example\.org|gmail\.com|orange\.fr)"),
        ("phone", r"(?:\+33|\b0)[67](?:[ .]?\d{2}){4}\b"),
        ("card", r"\b8000000\d{5}\b"),
        ("voucher", r"ANNIV-[A-Z0-9]{4}-[A-Z0-9]{4}"),
        ("export link", r"/exports/[A-Za-z0-9_-]{12,}"))}
    assert {kind: found for kind, found in leaks.items() if found} == {}

    pids = [stack.current_pid(name) for name in
            ["rasa", "actions", "gateway"] + [f"rasa-{i}" for i in range(2, stack.replicas + 1)]]
    stack.proc.send_signal(signal.SIGINT)
    assert stack.proc.wait(timeout=60) == 0
    assert "stopped." in stack.output
    # Every process stopped by itself, the gateway too after this module's web chat and
    # Socket.IO sessions (Socket.IO's tasks kept it past the grace period, then it was killed).
    assert "killed." not in stack.output
    assert not any(alive(pid) for pid in pids)
