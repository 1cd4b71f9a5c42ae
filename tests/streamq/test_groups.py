"""Group concurrency: at most N active jobs per key across workers, without spending attempts."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import msgspec
import pytest

from streamq import ConfigurationError, Context, EnqueueRequest, grouped
from streamq._groups import group_key


class Sync(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    n: int


@pytest.mark.parametrize("limit", [1, 2])
async def test_at_most_limit_jobs_per_group_across_two_workers(
    app_factory, queue, run_worker, limit: int
) -> None:
    app = app_factory()
    active: dict[str, int] = defaultdict(int)
    most: dict[str, int] = defaultdict(int)
    done: list[tuple[str, int]] = []
    side_by_side = 0

    @app.task("sync-wallet", queue=queue, max_attempts=1)
    @grouped(lambda req: req.wallet, limit=limit, retry_in=0.05)
    async def sync_wallet(ctx: Context, req: Sync) -> int:
        nonlocal side_by_side
        active[req.wallet] += 1
        most[req.wallet] = max(most[req.wallet], active[req.wallet])
        side_by_side = max(side_by_side, sum(active.values()))
        await asyncio.sleep(0.05)
        active[req.wallet] -= 1
        done.append((req.wallet, ctx.attempt))
        return req.n

    wallets = ["w1", "w2", "w3"]
    handles = await app.enqueue_many(
        [
            EnqueueRequest(name="sync-wallet", payload=Sync(wallet=w, n=i))
            for i in range(8)
            for w in wallets
        ]
    )
    async with run_worker(app, concurrency=10), run_worker(app, concurrency=10):
        results = await asyncio.gather(*(h.result(timeout=20) for h in handles))
    assert sorted(results) == sorted(i for i in range(8) for _ in wallets)
    assert dict(most) == dict.fromkeys(wallets, limit)
    # Waiting for the group never used up the single attempt.
    assert {attempt for _, attempt in done} == {1}
    # The cap is per group: different wallets ran side by side.
    assert side_by_side > limit
    for w in wallets:
        assert await app.redis.exists(group_key(queue, w)) == 0


async def test_bad_limit_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        grouped(lambda p: p, limit=0)
