"""`python -m bot up` for real: three processes, a conversation, crashes and Ctrl-C.

This is what `make run` starts. Ports are free ones and data lives in a temporary
folder, so it runs beside a developer's own instance.
"""
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
from pathlib import Path

import pytest

from bot.gateway import REPLY_ACTIONS_DOWN, REPLY_RASA_DOWN
from bot.settings import PROJECT_ROOT
from tests.conftest import free_port

pytestmark = pytest.mark.slow
STOCK_TOKEN = "integration-stock-token"


class Stack:
    def __init__(self, tmp_path):
        self.ports = {"GATEWAY_PORT": free_port(), "RASA_PORT": free_port(),
                      "ACTION_PORT": free_port()}
        self.env = {**os.environ, **{k: str(v) for k, v in self.ports.items()},
                    "COMPTOIR_VAR_DIR": str(tmp_path / "var"),
                    "COMPTOIR_MODELS_DIR": str(PROJECT_ROOT / "models"),
                    "STOCK_API_TOKEN": STOCK_TOKEN}
        for name in ("DATABASE_URL", "TRACKER_STORE_URL", "LOCK_STORE_URL", "RASA_TOKEN"):
            self.env.pop(name, None)
        self.url = f"http://127.0.0.1:{self.ports['GATEWAY_PORT']}"
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

    def wait_healthy(self, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.health()
            if status == 200:
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


@pytest.fixture(scope="module")
def stack(trained_model, tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("stack"))
    try:
        stack.wait_for_line(r"Comptoir is ready")
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


def test_bot_up_survives_crashes_and_stops_cleanly(stack, tmp_path):
    # The action server dies: a polite message, then it is back by itself.
    actions_pid = stack.pid("actions")
    mark = len(stack.lines)
    os.kill(actions_pid, signal.SIGKILL)
    assert texts(stack.say("client-1", "horaires de Nice")) == REPLY_ACTIONS_DOWN
    assert stack.pid("actions", after=mark) != actions_pid
    stack.wait_healthy()
    assert "Nice Masséna" in texts(stack.say("client-1", "horaires de Nice"))

    # Rasa dies: a polite message; after its restart the conversation is still there.
    rasa_pid = stack.pid("rasa")
    mark = len(stack.lines)
    os.kill(rasa_pid, signal.SIGKILL)
    assert texts(stack.say("client-1", "bonjour")) == REPLY_RASA_DOWN
    stack.pid("rasa", after=mark)
    stack.wait_healthy()
    token = (Path(stack.env["COMPTOIR_VAR_DIR"]) / "rasa_token").read_text().strip()
    with urllib.request.urlopen(
            f"http://127.0.0.1:{stack.ports['RASA_PORT']}/conversations/client-1/tracker"
            f"?token={token}", timeout=30) as response:
        events = json.loads(response.read())["events"]
    said = [e.get("text") for e in events if e["event"] == "user"]
    assert said[:2] == ["bonjour", "horaires du magasin de lille svp"]
    assert "Bonjour" in texts(stack.say("client-1", "bonjour"))

    # Rasa's API is never open without its token.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(
            f"http://127.0.0.1:{stack.ports['RASA_PORT']}/conversations/client-1/tracker",
            timeout=10)
    assert refused.value.code == 401

    # Logs carry ids and timings, never what the customer wrote.
    assert "horaires du magasin de lille" not in stack.output.lower()

    pids = []
    for name in ("rasa", "actions", "gateway"):
        last = max(i for i, line in enumerate(stack.lines) if f"{name} started" in line)
        pids.append(stack.pid(name, after=last))
    stack.proc.send_signal(signal.SIGINT)
    assert stack.proc.wait(timeout=60) == 0
    assert "stopped." in stack.output
    assert not any(alive(pid) for pid in pids)
