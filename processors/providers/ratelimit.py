"""An async token bucket: at most ``rate`` acquisitions per second, ``burst`` at once.

Callers that find the bucket empty reserve the next token and sleep until it is due, so waiting
callers are served in arrival order and the limit holds over any window of time.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

__all__ = ["RateLimiter", "SharedRateLimiter"]


class RateLimiter:
    """Token bucket shared by every call of one client (one instance per service)."""

    def __init__(self, rate: float, *, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        """Wait until a call may go out."""
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            # Take the token now, even if that drives the balance negative: the debt is the wait,
            # and the next caller sees it and queues behind us.
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            await anyio.sleep(wait)


# Reserve the next free slot of a shared schedule: the theoretical arrival time (TAT, µs of the
# server's clock) moves one interval per call; the caller sleeps until its slot. ``burst``
# calls may go at once after a quiet spell. Redis' clock is the only one used, so processes on
# different machines agree.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local floor = now - (tonumber(ARGV[2]) - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < floor then tat = floor end
local wait = tat - now
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX', math.floor((wait + interval) / 1000) + 1000)
return wait
"""


class SharedRateLimiter:
    """The same token bucket as :class:`RateLimiter`, kept in Redis so that every process
    calling one service shares it (the service's limit is per API key, not per process).

    ``redis`` returns the redis.asyncio client to use (called on each acquisition, so the
    limiter can be built before the connection exists).
    """

    def __init__(self, redis: Any, key: str, rate: float, *, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._redis = redis
        self.key = key
        self.rate = float(rate)
        self.burst = burst
        self._interval_us = max(1, round(1_000_000 / self.rate))

    async def acquire(self) -> None:
        """Wait until a call may go out (across every process sharing ``key``)."""
        client = await self._redis()
        wait_us = await client.eval(_RESERVE, 1, self.key, self._interval_us, self.burst)
        if wait_us:
            await anyio.sleep(int(wait_us) / 1_000_000)
