"""End to end, the system itself: `python -m bot up` starts the three processes from the
cached model and reports healthy; a conversation keeps its context across Rasa
replicas and its order; Rasa and the action server answer the gateway only; kill -9 of
any process loses no message and no record.
"""
import asyncio
import contextlib
import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest

from bot.web.conversation import REPLY_ACTIONS_DOWN, REPLY_RASA_DOWN
from tests.harness import console_session, next_of, texts, tracker_user_texts, web_chat

pytestmark = pytest.mark.slow


def test_start_uses_the_cached_model_and_reports_healthy(stack):
    assert "cache hit, no training" in stack.output
    status, body = stack.health()
    assert status == 200
    assert {c["status"] for c in body["components"].values()} == {"up"}
    assert body["components"]["rasa"]["replicas_up"] == f"{stack.replicas}/{stack.replicas}"
    assert body["components"]["shared"]["kind"] == ("redis" if stack.gateways > 1 else "memory")
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


async def test_two_gateways_share_every_channel_and_one_dies_without_a_lost_message(stack, agent, telegram):
    """Scale-out set-up: a web chat held by the first gateway and an agent's console on the
    second talk to each other live; then the first gateway is killed mid-conversation.
    The shopper's widget reconnects through the balancer with nothing missing, a REST
    customer writing all along gets every answer, and Telegram goes on (the other gateway
    takes over its polling)."""
    if stack.gateways < 2:
        pytest.skip("one gateway in this set-up: the scale-out set-up runs two")
    first, second = stack.gateway_urls
    customer, session_id, events = await web_chat(stack, url=first)
    await customer.emit("user_uttered", {"message": "je veux parler à un conseiller"})
    assert (await next_of(events, "bot_uttered"))["text"].startswith("Je vous passe un conseiller")

    http, csrf = await console_session(stack, agent, url=second)
    ws = await http.ws_connect("/console/ws", origin=second)

    async def agent_event(kind, author=None):
        while True:
            event = await asyncio.wait_for(ws.receive_json(), 30)
            if event["type"] == kind and author in (None, event.get("author")):
                return event

    queue = (await agent_event("queue"))["tickets"]
    ticket = max(t["id"] for t in queue if t["channel"] == "web" and t["status"] == "open")
    await ws.send_json({"csrf": csrf, "ticket_id": ticket, "action": "claim"})
    assert (await agent_event("result"))["ok"] is True
    await customer.emit("user_uttered", {"message": "c'est pour les pegasus en 42"})
    heard = await agent_event("message", "customer")  # said on the first gateway, heard on the second
    assert heard["text"] == "c'est pour les pegasus en 42"
    await ws.send_json({"csrf": csrf, "ticket_id": ticket, "action": "reply",
                        "text": "Je regarde le stock pour vous."})
    assert await next_of(events, "bot_uttered") == {"text": "Je regarde le stock pour vous."}

    steady = SteadyCustomer(stack, "steady-2-gateways")  # through the balancer, all along
    steady.start()
    steady.wait_answers(2)
    restarted = kill(stack, "gateway")  # the first one, holding the shopper's web chat
    with contextlib.suppress(Exception):
        await customer.eio.disconnect(abort=True)
    await ws.send_json({"csrf": csrf, "ticket_id": ticket, "action": "reply",
                        "text": "Nous l'avons en 42 à Lille."})
    assert (await agent_event("result"))["ok"] is True
    steady.wait_answers(3)

    # The widget comes back through the balancer: same conversation, nothing missing.
    again, same_session, events = await web_chat(stack, session_id=session_id)
    assert same_session == session_id
    await again.emit("history_request", {})
    history = [m.get("text") for m in await next_of(events, "history")]
    assert history[-2:] == ["Je regarde le stock pour vous.", "Nous l'avons en 42 à Lille."]
    await again.emit("user_uttered", {"message": "merci, je passe demain"})
    heard = await agent_event("message", "customer")  # the ticket still goes to the agent
    assert heard["text"] == "merci, je passe demain"
    await ws.send_json({"csrf": csrf, "ticket_id": ticket, "action": "close"})
    assert (await agent_event("result"))["ok"] is True
    assert "terminé" in (await next_of(events, "bot_uttered"))["text"]

    # Telegram goes on, whichever gateway polled before.
    user = 777_222
    before = len(telegram.calls)
    telegram.push(telegram.user_message(user, "horaires du magasin de lille"))
    answer = await asyncio.to_thread(telegram.wait_for, lambda c: telegram.calls.index(c) >= before
                                     and c["method"] == "sendMessage" and int(c["chat_id"]) == user, 60)
    assert "Lille" in answer[0]["text"]

    steady.wait_answers(2)
    steady.done.set()
    await asyncio.to_thread(steady.join, 60)
    said = tracker_user_texts(stack, "steady-2-gateways")
    assert [m for m in said if m in steady.answered] == steady.answered  # none lost
    assert len(said) == len(set(said))  # none twice
    # Only the message cut off by the kill itself may have gone unanswered.
    assert len(steady.sent) - len(steady.answered) <= 2
    await again.eio.disconnect(abort=True)
    await http.close()
    await asyncio.to_thread(restarted)
    await asyncio.to_thread(stack.wait_healthy)
