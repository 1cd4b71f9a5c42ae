from __future__ import annotations

import time

import anyio
import pytest

from processors.providers.ratelimit import RateLimiter

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
