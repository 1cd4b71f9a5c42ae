from __future__ import annotations

import itertools
import secrets
import time
from typing import Any

import anyio
import pytest
import redis.asyncio

from processors.providers.ratelimit import RateLimiter, SharedRateLimiter

pytestmark = pytest.mark.anyio


async def test_spacing_holds_under_concurrency() -> None:
    limiter = RateLimiter(20.0)
    stamps: list[float] = []
    start = time.monotonic()

    async def call() -> None:
        await limiter.acquire()
        stamps.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        for _ in range(15):
            tg.start_soon(call)
    stamps.sort()
    # The k-th caller never gets through before k / rate seconds: sleeps may run late, never early.
    for k, stamp in enumerate(stamps):
        assert stamp - start >= k * 0.05 - 0.001


async def test_burst_is_allowed_then_paced() -> None:
    limiter = RateLimiter(10.0, burst=5)
    start = time.monotonic()
    for _ in range(5):
        await limiter.acquire()
    assert time.monotonic() - start < 0.05  # the burst goes out at once
    await limiter.acquire()
    assert time.monotonic() - start >= 0.09  # the sixth waits for a refill


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
    with pytest.raises(ValueError):
        RateLimiter(1.0, burst=0)


def _min_gap(stamps: list[float]) -> float:
    stamps = sorted(stamps)
    return min(b - a for a, b in itertools.pairwise(stamps))


async def test_late_wake_ups_do_not_go_out_in_a_bunch() -> None:
    """The event loop stalls (a loaded CPU) while callers wait for their slots: when it runs
    again, they still go out one interval apart, not all at once."""
    limiter = RateLimiter(20.0)
    stamps: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        stamps.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(call)
        await anyio.sleep(0.01)  # the first has gone, the others sleep until their slots
        time.sleep(0.3)  # noqa: ASYNC251 - the stall under test: every wake-up runs late
    assert len(stamps) == 6
    assert _min_gap(stamps) >= 0.05 - 0.002


async def test_shared_limiter_late_wake_ups_do_not_go_out_in_a_bunch(valkey_url: str) -> None:
    client = redis.asyncio.Redis.from_url(valkey_url)
    key = f"test-ratelimit-{secrets.token_hex(4)}"

    async def connected() -> Any:
        return client

    limiter = SharedRateLimiter(connected, key, 20.0)
    stamps: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        stamps.append(time.monotonic())

    try:
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(call)
            await anyio.sleep(0.02)
            time.sleep(0.3)  # noqa: ASYNC251 - the stall under test
        assert len(stamps) == 6
        # Spaced on Redis' clock; the local stamps carry the round trip's jitter as well.
        assert _min_gap(stamps) >= 0.05 - 0.01
    finally:
        await client.delete(key)
        await client.aclose()
