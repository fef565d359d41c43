"""What the gateways share: flood limits, short-lived values (Telegram button payloads,
a retraining's progress), leases (one Telegram poller, one retraining at a time), who
is online in the web chat, and events from one gateway to all (the console's live
queue and messages).

One gateway keeps them in its memory (`LocalShared`). Several gateways behind a load
balancer share them through Redis (`RedisShared`, with REDIS_URL), so that any of them
can take any request. Redis being down never stops a conversation: a limit lets the
message through, a lost value or event is logged, and the next call tries again.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import redis
import redis.asyncio as aioredis

from bot.core.ratelimit import RateLimiter

logger = logging.getLogger("comptoir.shared")

Handler = Callable[[Dict[str, Any]], Awaitable[None]]
MAX_LOCAL_VALUES = 10_000  # one gateway's memory: the oldest value goes first


class Shared:
    """The interface; `LocalShared` and `RedisShared` implement it."""

    def __init__(self) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"  # this gateway
        self._handlers: Dict[str, List[Handler]] = {}

    def subscribe(self, topic: str, handler: Handler) -> None:
        """`handler(event)` for every event published on `topic`, by any gateway (this one
        included). Subscribe before `start`."""
        self._handlers.setdefault(topic, []).append(handler)

    async def _dispatch(self, topic: str, event: Dict[str, Any]) -> None:
        for handler in self._handlers.get(topic, []):
            try:
                await handler(event)
            except Exception:  # one handler's failure never stops the others
                logger.exception("shared event on %s not handled", topic)

    kind = "memory"

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> bool:
        """For /health: can this gateway share right now?"""
        return True
    async def wait(self, key: str, rate: float, burst: int) -> float:
        """Take one token of `key`'s bucket (`burst` at once, then `rate` a second): 0 if
        there was one, else the seconds until there will be."""
        raise NotImplementedError
    async def put(self, key: str, value: str, ttl: float) -> None: raise NotImplementedError
    async def get(self, key: str) -> Optional[str]: raise NotImplementedError
    async def lease(self, name: str, ttl: float) -> bool:
        """Take the lease `name` for `ttl` seconds, or keep it if this gateway holds it;
        False while another gateway holds it."""
        raise NotImplementedError
    async def release(self, name: str) -> None: raise NotImplementedError
    async def join(self, group: str, ttl: float) -> None:
        """This gateway is in `group` (it holds a web chat's socket) for `ttl` seconds."""
        raise NotImplementedError
    async def leave(self, group: str) -> None: raise NotImplementedError
    async def anyone(self, group: str) -> bool:
        """Is any gateway in `group`?"""
        raise NotImplementedError
    async def publish(self, topic: str, event: Dict[str, Any]) -> None: raise NotImplementedError


class LocalShared(Shared):
    """One gateway: everything in memory, events handed to the handlers at once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self._limiters: Dict[Tuple[float, int], RateLimiter] = {}
        self._values: "OrderedDict[str, Tuple[str, float]]" = OrderedDict()
        self._groups: Dict[str, float] = {}

    async def wait(self, key: str, rate: float, burst: int) -> float:
        limiter = self._limiters.get((rate, burst))
        if limiter is None:
            limiter = self._limiters[(rate, burst)] = RateLimiter(rate, burst, clock=self.clock)
        return limiter.wait(key)

    async def put(self, key: str, value: str, ttl: float) -> None:
        self._values.pop(key, None)
        self._values[key] = (value, self.clock() + ttl)
        while len(self._values) > MAX_LOCAL_VALUES:
            self._values.popitem(last=False)

    async def get(self, key: str) -> Optional[str]:
        value, until = self._values.get(key, (None, 0.0))
        return value if until > self.clock() else None

    async def lease(self, name: str, ttl: float) -> bool:
        return True  # nobody else to hold it

    async def release(self, name: str) -> None:
        return None

    async def join(self, group: str, ttl: float) -> None:
        self._groups[group] = self.clock() + ttl

    async def leave(self, group: str) -> None:
        self._groups.pop(group, None)

    async def anyone(self, group: str) -> bool:
        return self._groups.get(group, 0.0) > self.clock()

    async def publish(self, topic: str, event: Dict[str, Any]) -> None:
        await self._dispatch(topic, event)


# A token bucket in one step, on Redis's clock (gateways' clocks may differ).
_TAKE = """
local burst, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens, last = tonumber(b[1]) or burst, tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - last) * rate) - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'last', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1)
if tokens >= 0 then return '0' end
return tostring(-tokens / rate)
"""
_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisShared(Shared):
    """Several gateways: the same state in Redis, events over Redis pub/sub."""

    kind = "redis"

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.redis = aioredis.from_url(url, decode_responses=True, socket_timeout=5,
                                       socket_connect_timeout=5, health_check_interval=30)
        self._take = self.redis.register_script(_TAKE)
        self._lease = self.redis.register_script(_LEASE)
        self._release = self.redis.register_script(_RELEASE)
        self._listener: Optional[asyncio.Task] = None

    async def start(self) -> None:
        if self._handlers and self._listener is None:
            subscribed = asyncio.Event()
            self._listener = asyncio.create_task(self._listen(subscribed))
            # Events published from now on reach this gateway (within a few seconds, or
            # the listener keeps trying in the background while Redis is away).
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(subscribed.wait(), timeout=5)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.redis.close()
        await self.redis.connection_pool.disconnect()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def _listen(self, subscribed: asyncio.Event) -> None:
        channels = {self.prefix + topic: topic for topic in self._handlers}
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        event = json.loads(message["data"])
                    except (TypeError, ValueError):
                        continue
                    await self._dispatch(channels[message["channel"]], event)
            except (redis.RedisError, OSError) as error:
                logger.warning("shared events: Redis unavailable (%s); retrying", type(error).__name__)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.close()

    async def _guarded(self, what: str, call: Awaitable[Any], default: Any) -> Any:
        try:
            return await call
        except (redis.RedisError, OSError) as error:
            logger.warning("shared %s: Redis unavailable (%s)", what, type(error).__name__)
            return default

    async def wait(self, key: str, rate: float, burst: int) -> float:
        # Redis away: the message goes through (a limit is not worth a lost message).
        return float(await self._guarded("limit", self._take(
            keys=[self.prefix + "limit:" + key], args=[burst, rate]), "0"))

    async def put(self, key: str, value: str, ttl: float) -> None:
        await self._guarded("value", self.redis.set(self.prefix + key, value,
                                                    px=int(ttl * 1000)), None)

    async def get(self, key: str) -> Optional[str]:
        return await self._guarded("value", self.redis.get(self.prefix + key), None)

    async def lease(self, name: str, ttl: float) -> bool:
        return bool(await self._guarded("lease", self._lease(
            keys=[self.prefix + "lease:" + name], args=[self.owner, int(ttl * 1000)]), 0))

    async def release(self, name: str) -> None:
        await self._guarded("lease", self._release(keys=[self.prefix + "lease:" + name],
                                                   args=[self.owner]), 0)

    async def join(self, group: str, ttl: float) -> None:
        await self._guarded("presence", self.redis.zadd(self.prefix + "group:" + group,
                                                        {self.owner: time.time() + ttl}), None)
        await self._guarded("presence", self.redis.expire(self.prefix + "group:" + group,
                                                          int(ttl) + 1), None)

    async def leave(self, group: str) -> None:
        await self._guarded("presence", self.redis.zrem(self.prefix + "group:" + group,
                                                        self.owner), None)

    async def anyone(self, group: str) -> bool:
        # Redis away: nobody, so that a message waits in the outbox rather than be lost.
        count = await self._guarded("presence", self.redis.zcount(
            self.prefix + "group:" + group, time.time(), "+inf"), 0)
        return bool(count)

    async def publish(self, topic: str, event: Dict[str, Any]) -> None:
        await self._guarded("event", self.redis.publish(self.prefix + topic, json.dumps(event)), None)


def make_shared(redis_url: Optional[str], prefix: str) -> Shared:
    return RedisShared(redis_url, prefix) if redis_url else LocalShared()
