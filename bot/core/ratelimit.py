"""Per-conversation flow control, in memory: a token bucket per key, and a lock per key
so one conversation's messages are handled one at a time, in arrival order."""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import AsyncIterator, Callable, Dict, Hashable, Tuple


class RateLimiter:
    """`burst` messages at once, then `rate` per second; `wait(key)` says how long to hold."""

    def __init__(self, rate: float = 1.0, burst: int = 5, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: Dict[str, Tuple[float, float]] = {}

    def wait(self, key: str) -> float:
        """Take one token; return 0 if it was there, else the seconds until it will be."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate) - 1
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._buckets.clear()  # crude bound on memory under a storm of new keys
        self._buckets[key] = (tokens, now)
        return 0.0 if tokens >= 0 else -tokens / self.rate


class KeyedLocks:
    """One FIFO lock per key (asyncio.Lock wakes waiters in order); a key's entry goes
    away when nobody holds or waits for it, so memory follows live conversations."""

    def __init__(self) -> None:
        self._locks: Dict[Hashable, Tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
