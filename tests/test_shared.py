"""What gateways share (bot/core/shared.py): in memory for one gateway, in Redis for
several. The Redis cases run two `RedisShared`, as two gateways would, against a real
Redis (skipped, saying why, without one)."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from bot.core.shared import LocalShared, RedisShared
from tests.harness import free_port, redis_server


@pytest.fixture
def redis_url(tmp_path):
    with redis_server(tmp_path) as url:
        yield url


@pytest.fixture
async def two_gateways(redis_url):
    prefix = f"comptoir-test:{uuid.uuid4().hex[:8]}:"  # this test's keys only
    first, second = RedisShared(redis_url, prefix), RedisShared(redis_url, prefix)
    yield first, second
    for shared in (first, second):
        await shared.close()


async def test_a_flood_spread_over_two_gateways_is_slowed_down_as_on_one(two_gateways):
    first, second = two_gateways
    waits = [await (first if i % 2 else second).wait("flood:web:abc", 1.0, 4) for i in range(7)]
    assert waits[:4] == [0.0] * 4  # the burst, whichever gateway took it
    assert 0.8 < waits[4] <= 1.0 and 1.8 < waits[5] <= 2.0 and 2.8 < waits[6] <= 3.0
    assert await first.wait("flood:web:someone-else", 1.0, 4) == 0.0


async def test_one_gateway_holds_a_lease_until_it_lets_go_or_dies(two_gateways):
    first, second = two_gateways
    assert await first.lease("telegram-poller", 0.5)
    assert await first.lease("telegram-poller", 0.5)  # kept by its holder
    assert not await second.lease("telegram-poller", 0.5)
    await first.release("telegram-poller")
    assert await second.lease("telegram-poller", 0.5)
    await asyncio.sleep(0.7)  # the holder stopped renewing (a gateway killed)
    assert await first.lease("telegram-poller", 0.5)


async def test_a_value_put_by_one_gateway_is_read_by_the_other_until_it_expires(two_gateways):
    first, second = two_gateways
    await first.put("telegram:p:123", '/inform{"colour":"bleu nuit"}', 0.5)
    assert await second.get("telegram:p:123") == '/inform{"colour":"bleu nuit"}'
    await asyncio.sleep(0.7)
    assert await second.get("telegram:p:123") is None


async def test_a_web_chat_open_on_one_gateway_is_seen_from_the_other(two_gateways):
    first, second = two_gateways
    assert not await second.anyone("web:session-1")
    await first.join("web:session-1", 30)
    assert await second.anyone("web:session-1")
    await first.leave("web:session-1")
    assert not await second.anyone("web:session-1")
    await first.join("web:session-2", 0.5)  # and a gateway gone without a word is forgotten
    await asyncio.sleep(0.7)
    assert not await second.anyone("web:session-2")


async def test_an_event_published_by_one_gateway_reaches_every_gateway(two_gateways):
    first, second = two_gateways
    heard = {"first": [], "second": []}
    for name, shared in (("first", first), ("second", second)):
        async def handler(event, name=name):
            heard[name].append(event)
        shared.subscribe("console", handler)
        await shared.start()
    await first.publish("console", {"agent_id": 3, "event": {"type": "message", "text": "Bonjour"}})
    for _ in range(50):
        if heard["first"] and heard["second"]:
            break
        await asyncio.sleep(0.05)
    assert heard["first"] == heard["second"] == [{"agent_id": 3, "event": {"type": "message",
                                                                          "text": "Bonjour"}}]


async def test_redis_down_never_stops_a_conversation():
    """Messages go through unlimited, a web chat counts as away (its messages wait in the
    outbox), and nothing raises."""
    shared = RedisShared(f"redis://127.0.0.1:{free_port()}/0", "comptoir-test:down:")
    try:
        assert await shared.wait("flood:web:abc", 1.0, 4) == 0.0
        assert await shared.get("telegram:p:1") is None
        await shared.put("telegram:p:1", "x", 10)
        assert not await shared.anyone("web:session-1")
        assert not await shared.lease("retrain", 10)
        await shared.publish("console", {"queue": True})
    finally:
        await shared.close()


async def test_one_gateway_alone_keeps_it_all_in_memory_alike():
    now = [100.0]
    shared = LocalShared(clock=lambda: now[0])
    heard = []

    async def handler(event):
        heard.append(event)
    shared.subscribe("console", handler)
    assert [await shared.wait("k", 1.0, 2) for _ in range(3)] == [0.0, 0.0, 1.0]
    await shared.put("v", "x", 5)
    await shared.join("web:s", 5)
    assert await shared.get("v") == "x" and await shared.anyone("web:s")
    now[0] += 6
    assert await shared.get("v") is None and not await shared.anyone("web:s")
    await shared.publish("console", {"queue": True})
    assert heard == [{"queue": True}]
