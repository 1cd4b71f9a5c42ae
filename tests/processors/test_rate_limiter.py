from __future__ import annotations

import time

import anyio
import pytest

from processors.providers.ratelimit import RateLimiter

pytestmark = pytest.mark.anyio


async def test_spacing_holds_under_concurrency() -> None:
    limiter = RateLimiter(20.0)
    stamps: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        stamps.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        for _ in range(15):
            tg.start_soon(call)
    stamps.sort()
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= 0.05 - 0.005
    assert stamps[-1] - stamps[0] >= 14 * 0.05 - 0.01


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
