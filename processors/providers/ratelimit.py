"""Rate limits of the external services: at most ``rate`` requests per second, ``burst`` at once.

Both limiters are a GCRA token bucket that grants a slot only at the moment the caller is about
to send — never one reserved in advance for a later wake-up. A caller that finds no free slot
sleeps until the earliest moment one could be free and then asks again; however late that
wake-up runs (a loaded CPU, a slow event loop), it is checked against the clock as it is then,
so late callers never go out in a bunch.

**Guarantee.** Grants (the moments ``acquire`` returns) are spaced so that any interval of
``t`` seconds holds at most ``burst + floor(t * rate)`` of them — with ``burst=1``, two grants
are always at least ``1 / rate`` seconds apart — measured on one clock: the process's
monotonic clock for :class:`RateLimiter`, the Redis server's clock for
:class:`SharedRateLimiter` (so every process of a deployment shares one schedule). Callers
should send right after ``acquire`` returns; what the limiter cannot see is the time between
that and the request reaching the wire.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

__all__ = ["RateLimiter", "SharedRateLimiter"]


def _check(rate: float, burst: int) -> None:
    if rate <= 0 or burst < 1:
        raise ValueError("rate must be > 0 and burst >= 1")


class RateLimiter:
    """The bucket of one process (one instance per service client)."""

    def __init__(self, rate: float, *, burst: int = 1) -> None:
        _check(rate, burst)
        self.rate = float(rate)
        self.burst = burst
        self._interval = 1.0 / self.rate
        # The theoretical arrival time: when the bucket is next empty of debt.
        self._tat = 0.0
        self._lock = anyio.Lock()

    def _try_take(self, now: float) -> float:
        """Takes a slot if one is free at ``now`` (returns 0), else returns how long until one
        may be, taking nothing."""
        tat = max(self._tat, now)
        allowed_at = tat - (self.burst - 1) * self._interval
        if now < allowed_at:
            return allowed_at - now
        self._tat = tat + self._interval
        return 0.0

    async def acquire(self) -> None:
        """Waits until a request may be sent now; send it right away."""
        while True:
            async with self._lock:
                wait = self._try_take(time.monotonic())
            if wait <= 0:
                return
            await anyio.sleep(wait)


# The same bucket in Redis, on the server's clock (µs), so processes on different machines agree.
# A slot is taken only when it is free now; else the wait until one may be is returned and
# nothing is taken (the caller asks again after it).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allowed_at = tat - (tonumber(ARGV[2]) - 1) * interval
if now < allowed_at then return allowed_at - now end
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX', math.floor((tat + interval - now) / 1000) + 1000)
return 0
"""


class SharedRateLimiter:
    """The bucket of :class:`RateLimiter`, kept in Redis so that every process calling one
    service shares it (the service's limit is per API key, not per process).

    ``redis`` returns the redis.asyncio client to use (called on each acquisition, so the
    limiter can be built before the connection exists).
    """

    def __init__(self, redis: Any, key: str, rate: float, *, burst: int = 1) -> None:
        _check(rate, burst)
        self._redis = redis
        self.key = key
        self.rate = float(rate)
        self.burst = burst
        self._interval_us = max(1, round(1_000_000 / self.rate))

    async def acquire(self) -> None:
        """Waits until a request may be sent now (across every process sharing ``key``);
        send it right away."""
        while True:
            client = await self._redis()
            wait_us = int(await client.eval(_TAKE, 1, self.key, self._interval_us, self.burst))
            if wait_us <= 0:
                return
            await anyio.sleep(wait_us / 1_000_000)
