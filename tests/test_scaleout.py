"""Scale-out on existing engines: PostgreSQL as shop database and tracker store, Redis as
Rasa's lock store, two Rasa replicas behind the gateway (`RASA_REPLICAS=2`).

Uses the PostgreSQL and Redis of the machine (a private redis-server is started when none
answers); skipped, saying why, where neither can be had.
"""
import concurrent.futures
import json
import os
import signal
import time
import urllib.request
import zlib

import pytest

from tests.conftest import redis_server, temporary_postgres_database
from tests.test_integration import Stack, outbox_code, texts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scaled(trained_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scaled")
    with temporary_postgres_database() as shop_db, temporary_postgres_database() as trackers, \
            redis_server(tmp) as redis_url:
        stack = Stack(tmp, {"DATABASE_URL": shop_db, "TRACKER_STORE_URL": trackers,
                            "LOCK_STORE_URL": redis_url, "RASA_REPLICAS": "2",
                            "SUPPORT_HOURS": "lun-dim 00:00-00:00"})
        try:
            stack.wait_for_line(r"Comptoir is ready", timeout=600)
            yield stack
        finally:
            if stack.proc.poll() is None:
                stack.proc.send_signal(signal.SIGINT)
                try:
                    stack.proc.wait(timeout=90)
                except Exception:
                    stack.proc.kill()


def tracker_user_texts(stack, sender):
    """What the customer said, as the shared tracker store has it (asked of replica 2)."""
    with open(stack.env["COMPTOIR_VAR_DIR"] + "/rasa_token") as handle:
        token = handle.read().strip()
    with urllib.request.urlopen(
            f"http://127.0.0.1:{stack.ports['RASA_PORT'] + 1}/conversations/{sender}/tracker"
            f"?token={token}", timeout=30) as response:
        return [e["text"] for e in json.loads(response.read())["events"] if e["event"] == "user"]


def sender_on_replica(prefix, replica):
    """A sender id the gateway sends to this replica first (crc32 of the id)."""
    return next(f"{prefix}-{i}" for i in range(100) if zlib.crc32(f"{prefix}-{i}".encode()) % 2 == replica)


def test_two_replicas_are_up_on_postgres_and_redis(scaled):
    body = scaled.wait_healthy()
    assert body["components"]["rasa"]["replicas_up"] == "2/2"
    assert scaled.pid("rasa") != scaled.pid("rasa-2")
    endpoints = open(scaled.env["COMPTOIR_VAR_DIR"] + "/endpoints.yml").read()
    assert "type: redis" in endpoints and "dialect: postgresql" in endpoints


def test_a_conversation_keeps_its_context_across_replicas(scaled):
    sender = sender_on_replica("scaled-ctx", 0)
    assert "quelle taille" in texts(scaled.say(sender, "vous avez les pegasus 41 homme ?"))
    # Its replica dies: the other one takes the conversation from the shared tracker
    # store, with its context.
    rasa_pid, mark = scaled.pid("rasa"), len(scaled.lines)
    os.kill(rasa_pid, signal.SIGKILL)
    answer = texts(scaled.say(sender, "en 42 noir a lyon part dieu"))
    assert "Lyon Part-Dieu" in answer and "Pegasus 41" in answer
    scaled.pid("rasa", after=mark)  # restarted by the supervisor
    scaled.wait_healthy()


def test_concurrent_messages_to_one_conversation_are_kept_in_order(scaled):
    sender = "scaled-order-1"
    messages = [f"horaires de {city}" for city in ("Lille", "Nice", "Rennes", "Metz", "Dijon",
                                                  "Brest", "Reims", "Tours")]

    def send(message):
        return scaled.say(sender, message)

    with concurrent.futures.ThreadPoolExecutor(len(messages)) as pool:
        futures = []
        for message in messages:  # sent back to back, answered concurrently
            futures.append(pool.submit(send, message))
            time.sleep(0.05)
        answers = [f.result() for f in futures]
    for message, answer in zip(messages, answers):
        assert message.split()[-1] in texts(answer)
    said = tracker_user_texts(scaled, sender)
    assert said == messages  # none lost, none twice, in the order they were sent


def test_birthday_voucher_and_till_on_postgres(scaled):
    from bot.offers import VOUCHER_RE
    from tests.test_integration import TILL_TOKEN

    email, sender = "camille.martin@example.org", "scaled-bday-1"
    scaled.say(sender, "c'est mon anniversaire")
    scaled.say(sender, email)
    code = VOUCHER_RE.search(texts(scaled.say(sender, outbox_code(scaled, email)))).group(0)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # four tills scan it at once
        results = list(pool.map(lambda store: scaled.post(
            f"/api/vouchers/{code}/use", {"store": store}, {"Authorization": f"Bearer {TILL_TOKEN}"}),
            ("LYS-PDI", "PAR-RIV", "LIL-CTR", "WEB")))
    assert sorted(status for status, _ in results) == [200, 409, 409, 409]
