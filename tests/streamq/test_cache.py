"""Result cache: one job for many concurrent callers, expiry, failures are not cached."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from streamq import (
    Context,
    EnqueueRequest,
    Fatal,
    JobFailed,
    PayloadMismatch,
    StreamqError,
    cached,
    enqueue_verified,
)
from streamq._cache import cache_key, invalidate


async def test_hundred_concurrent_callers_cause_one_job(app_factory, queue, run_worker) -> None:
    runs: list[str] = []

    async def fetch_balance(ctx: Context, wallet: str) -> dict[str, float]:
        runs.append(ctx.job_id)
        await asyncio.sleep(0.2)
        return {"sol": 1.5, "calls": float(len(runs))}

    # Four clients (as four processes would be), 25 callers each.
    apps = [app_factory() for _ in range(4)]
    for each in apps:
        each.task("fetch-balance", queue=queue)(fetch_balance)
    app = apps[0]
    request = EnqueueRequest(name="fetch-balance", payload="wallet-1")
    async with run_worker(app, concurrency=20):
        results = await asyncio.gather(
            *(
                cached(apps[i % 4], "balance:{wallet-1}", 30.0, request, timeout=10)
                for i in range(100)
            )
        )
        assert len(runs) == 1
        assert all(r == {"sol": 1.5, "calls": 1.0} for r in results)
        # Later callers read the cache: still one job.
        assert await cached(app, "balance:{wallet-1}", 30.0, request) == results[0]
        assert len(runs) == 1
    stats = await app.stats(queue)
    assert stats.totals["enqueued"] == 1
    assert await app.redis.pttl(cache_key(queue, "balance:{wallet-1}")) > 25_000


async def test_expired_entry_runs_the_job_again(app_factory, queue, run_worker) -> None:
    app = app_factory()
    runs: list[int] = []

    @app.task("count", queue=queue)
    async def count(ctx: Context, _: None) -> int:
        runs.append(1)
        return len(runs)

    # dedup_ttl=0: once the job is finished, a miss starts a fresh one.
    request = EnqueueRequest(name="count", dedup_ttl=0)
    async with run_worker(app):
        assert await cached(app, "k", 0.3, request) == 1
        assert await cached(app, "k", 0.3, request) == 1
        await asyncio.sleep(0.4)
        assert await cached(app, "k", 0.3, request) == 2
        assert await invalidate(app, "k", queue) is True
        assert await cached(app, "k", 0.3, request) == 3
    assert len(runs) == 3


async def test_failures_are_not_cached(app_factory, queue, run_worker) -> None:
    app = app_factory()
    runs: list[int] = []

    @app.task("flaky", queue=queue)
    async def flaky(ctx: Context, _: None) -> str:
        runs.append(1)
        if len(runs) == 1:
            raise Fatal("provider down")
        return "ok"

    request = EnqueueRequest(name="flaky", dedup_ttl=0)
    async with run_worker(app):
        with pytest.raises(JobFailed, match="provider down"):
            await cached(app, "f", 10.0, request)
        assert await app.redis.exists(cache_key(queue, "f")) == 0
        assert await cached(app, "f", 10.0, request) == "ok"
    assert len(runs) == 2


class Wallet(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    deep: bool = False


async def test_a_planted_job_under_the_derived_id_is_not_used(
    app_factory, queue, run_worker
) -> None:
    """Someone enqueued under the id the application derives for wallet A, with wallet B in
    the payload: ``cached`` refuses it instead of returning B's balance as A's."""
    app = app_factory()

    @app.task("balance", queue=queue)
    async def balance(ctx: Context, req: Wallet) -> dict[str, int]:
        return {"lamports": 7_579_459_458 if req.wallet == "wallet-b" else 1}

    await app.enqueue("balance", Wallet(wallet="wallet-b"), id="bal:wallet-a:1", queue=queue)
    request = EnqueueRequest(name="balance", payload={"wallet": "wallet-a"}, id="bal:wallet-a:1")
    async with run_worker(app):
        with pytest.raises(PayloadMismatch, match=r"bal:wallet-a:1") as raised:
            await cached(app, "balance:wallet-a", 30.0, request)
    assert isinstance(raised.value, StreamqError)
    assert (raised.value.queue, raised.value.job_id) == (queue, "bal:wallet-a:1")
    assert await app.redis.exists(cache_key(queue, "balance:wallet-a")) == 0


async def test_a_job_of_another_name_under_the_derived_id_is_not_used(app_factory, queue) -> None:
    app = app_factory()

    @app.task("balance", queue=queue)
    async def balance(ctx: Context, req: Wallet) -> int:
        return 1

    @app.task("other", queue=queue)
    async def other(ctx: Context, req: Wallet) -> int:
        return 2

    await app.enqueue("other", Wallet(wallet="wallet-a"), id="bal:wallet-a:2", queue=queue)
    request = EnqueueRequest(name="balance", payload=Wallet(wallet="wallet-a"), id="bal:wallet-a:2")
    with pytest.raises(PayloadMismatch, match="other"):
        await enqueue_verified(app, [request])


async def test_the_same_payload_is_shared_whatever_its_form(app_factory, queue) -> None:
    """A dict in another key order, or the Struct itself, is the same payload: dedup holds."""
    app = app_factory()

    @app.task("balance", queue=queue)
    async def balance(ctx: Context, req: Wallet) -> int:
        return 1

    first = EnqueueRequest(name="balance", payload={"wallet": "w", "deep": True}, id="bal:w:3")
    again = [
        EnqueueRequest(name="balance", payload={"deep": True, "wallet": "w"}, id="bal:w:3"),
        EnqueueRequest(name="balance", payload=Wallet(wallet="w", deep=True), id="bal:w:3"),
    ]
    [handle] = await enqueue_verified(app, [first])
    assert not handle.deduplicated
    shared = await enqueue_verified(app, again)
    assert [h.deduplicated for h in shared] == [True, True]
    differs = EnqueueRequest(name="balance", payload=Wallet(wallet="w"), id="bal:w:3")
    with pytest.raises(PayloadMismatch):
        await enqueue_verified(app, [differs])
    assert (await app.stats(queue)).totals["enqueued"] == 1
