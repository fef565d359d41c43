"""Per-conversation rate limiting: a token bucket per key, in memory."""
from __future__ import annotations

import time
from typing import Callable, Dict, Tuple


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
