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

import pytest

from bot.gateway import REPLY_ACTIONS_DOWN, REPLY_RASA_DOWN
from bot.settings import PROJECT_ROOT
from tests.conftest import free_port

pytestmark = pytest.mark.slow


class Stack:
    def __init__(self, tmp_path):
        self.ports = {"GATEWAY_PORT": free_port(), "RASA_PORT": free_port(),
                      "ACTION_PORT": free_port()}
        self.env = {**os.environ, **{k: str(v) for k, v in self.ports.items()},
                    "COMPTOIR_VAR_DIR": str(tmp_path / "var"),
                    "COMPTOIR_MODELS_DIR": str(PROJECT_ROOT / "models")}
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

    def say(self, sender, message):
        request = urllib.request.Request(
            f"{self.url}/webhooks/rest/webhook", method="POST",
            data=json.dumps({"sender": sender, "message": message}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
            return json.loads(response.read())

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


def test_bot_up_serves_conversations_survives_crashes_and_stops_cleanly(trained_model, tmp_path):
    stack = Stack(tmp_path)
    try:
        stack.wait_for_line(r"Comptoir is ready")
        assert "cache hit, no training" in stack.output
        status, body = stack.health()
        assert status == 200
        assert {c["status"] for c in body["components"].values()} == {"up"}

        greeting = stack.say("client-1", "bonjour")
        assert greeting[0]["recipient_id"] == "client-1"
        assert "Bonjour" in greeting[0]["text"] and "stock" in greeting[0]["text"]
        assert greeting[0]["buttons"]

        lille = texts(stack.say("client-1", "horaires du magasin de lille svp"))
        assert "Lille Centre — 31 rue Neuve, 59000 Lille" in lille

        assert "Pour quel magasin" in texts(stack.say("client-2", "vous etes ouverts dimanche ?"))
        assert "Bordeaux Sainte-Catherine" in texts(stack.say("client-2", "Bordeaux"))

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
        token = (tmp_path / "var" / "rasa_token").read_text().strip()
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

        pids = [stack.pid(name, after=i) for name in ("rasa", "actions", "gateway")
                for i in [max(j for j, line in enumerate(stack.lines)
                              if f"{name} started" in line)]]
        stack.proc.send_signal(signal.SIGINT)
        assert stack.proc.wait(timeout=60) == 0
        assert "stopped." in stack.output
        assert not any(alive(pid) for pid in pids)
    finally:
        if stack.proc.poll() is None:  # a failed assertion: still stop all three
            stack.proc.send_signal(signal.SIGINT)
            try:
                stack.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stack.proc.kill()
