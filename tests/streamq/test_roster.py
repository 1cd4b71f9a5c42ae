"""Workers and jobs they have no handler for: handed back to a worker that has one, dead-lettered
``unknown_job`` only when no live worker has served the task for the grace period."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec

from streamq import App, Context, EnqueueRequest, _keys
from streamq._roster import Load, live_tasks, load_key


class Wallet(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str


async def until(check: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def _sync_only(app: App, queue: str) -> None:
    """The README example's worker: the queue's ``sync-wallet`` only."""

    @app.task("sync-wallet", queue=queue)
    async def sync_wallet(ctx: Context, req: Wallet) -> str:
        return req.wallet


async def test_a_worker_without_the_handler_leaves_the_jobs_to_one_with_it(
    app_factory, queue, run_worker
) -> None:
    partial, full = app_factory(), app_factory()
    _sync_only(partial, queue)
    _sync_only(full, queue)
    ran: list[str] = []

    @full.task("fetch-balances", queue=queue)
    async def fetch_balances(ctx: Context, req: Wallet) -> str:
        ran.append(req.wallet)
        return req.wallet

    async with run_worker(partial, concurrency=50), run_worker(full, concurrency=50):
        await until(lambda: live_tasks(partial.broker, queue))
        handles = await full.enqueue_many(
            [
                EnqueueRequest(name="fetch-balances", payload=Wallet(wallet=f"w{i}"))
                for i in range(1000)
            ]
        )

        async def all_done() -> bool:
            totals = (await full.stats(queue)).totals
            return totals.get("completed", 0) >= 1000

        await until(all_done, timeout=60)
        stats = await full.stats(queue)
        events = await full.broker.redis.xrange(_keys.events(queue), count=20_000)
    handed_back = [f for _, f in events if f.get(b"r") == b"handed back: no handler in that worker"]
    assert handed_back, "the worker without the handler never received one of those jobs"
    assert stats.totals.get("completed") == 1000
    assert stats.dead == 0 and stats.totals.get("dead", 0) == 0
    assert sorted(ran) == sorted(f"w{i}" for i in range(1000))
    # Handing back spends neither an attempt nor a delivery.
    jobs = [await full.job(queue, h.id) for h in handles[:100]]
    assert all(j is not None and j.state == "completed" for j in jobs)
    assert all(j is not None and j.attempt == 1 and j.deliveries == 1 for j in jobs)


async def test_a_job_no_live_worker_serves_is_dead_after_the_grace(
    app_factory, queue, run_worker
) -> None:
    producer, partial = app_factory(), app_factory()
    _sync_only(partial, queue)

    @producer.task("fetch-balances", queue=queue)
    async def fetch_balances(ctx: Context, req: Wallet) -> str:
        return req.wallet

    async with run_worker(partial, unknown_grace=1.0):
        started = time.monotonic()
        h = await producer.enqueue("fetch-balances", Wallet(wallet="w"))

        async def dead() -> bool:
            job = await h.info()
            return job is not None and job.state == "dead"

        await until(dead, timeout=15)
        waited = time.monotonic() - started
    job = await h.info()
    assert job is not None and job.reason == "unknown_job"
    assert job.error == (
        f"no handler for 'fetch-balances' in any live worker of queue {queue!r} (none for 1 s)"
    )
    assert job.attempt == 1
    assert waited >= 1.0
    [letter] = await producer.dead_letters(queue)
    assert letter.job == h.id and letter.reason == "unknown_job"


async def test_live_tasks_are_the_live_workers_tasks(app_factory, queue, run_worker) -> None:
    a, b = app_factory(), app_factory()
    _sync_only(a, queue)

    @b.task("fetch-balances", queue=queue)
    async def fetch_balances(ctx: Context, req: Wallet) -> str:
        return req.wallet

    await a.connect()
    assert await live_tasks(a.broker, queue) is None
    async with run_worker(a), run_worker(b):

        async def both() -> bool:
            return len(await live_tasks(a.broker, queue) or {}) == 2

        await until(both, timeout=10)
        known = await live_tasks(a.broker, queue)
        assert known is not None and sorted(known) == ["fetch-balances", "sync-wallet"]
        assert "wallet" in known["sync-wallet"]  # the payload's JSON schema
        # Each worker's entry expires with its heartbeat (15 s by default) if it dies.
        consumers = await a.broker.redis.zrange(_keys.workers(queue), 0, -1)
        ttls = [await a.broker.redis.pttl(_keys.roster(queue, c.decode())) for c in consumers]
        assert len(ttls) == 2 and all(0 < ttl <= 15_000 for ttl in ttls)
    assert await live_tasks(a.broker, queue) is None


async def test_a_workers_load_is_published_with_its_roster_and_withdrawn(
    app_factory, queue, run_worker
) -> None:
    app = app_factory()
    release = asyncio.Event()

    @app.task("hold", queue=queue)
    async def hold(ctx: Context, n: int) -> int:
        await release.wait()
        return n

    handle = await app.enqueue("hold", 1, queue=queue)
    async with run_worker(app, concurrency=4, heartbeat_ttl=1.5) as worker:
        key = load_key(queue, worker.consumer)

        async def published() -> Load | None:
            raw = await app.broker.redis.get(key)
            load = Load.loads(raw) if raw else None
            return load if load and load.jobs else None

        await until(published, timeout=10)
        load = await published()
        assert load == Load(concurrency=4, in_use=1, jobs=[(handle.id, "normal")])
        assert 0 < await app.broker.redis.pttl(key) <= 1500  # expires with the heartbeat
        release.set()
        await handle.result(timeout=10)
    assert not await app.broker.redis.exists(key)  # a worker that stops withdraws it
    assert Load.loads(b"not json") is None and Load.loads(b'{"jobs": 3}') is None
