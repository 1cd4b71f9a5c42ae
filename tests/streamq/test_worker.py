"""Running jobs: results, retries, timeouts, dead letters, cancel, pause, priorities, events."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable

import msgspec
import pytest

import streamq
from streamq import App, Backoff, Context, EnqueueRequest, Fatal, JobCancelled, JobFailed, Retry


class Add(msgspec.Struct, frozen=True, kw_only=True):
    a: int
    b: int


class Sum(msgspec.Struct, frozen=True, kw_only=True):
    total: int


async def until(check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_result_round_trips_typed_structs(app_factory, queue, run_worker) -> None:
    app = app_factory()

    @app.task("add", queue=queue)
    async def add(ctx: Context, req: Add) -> Sum:
        return Sum(total=req.a + req.b)

    async with run_worker(app):
        h = await app.enqueue("add", Add(a=2, b=3))
        assert await h.result(timeout=5) == {"total": 5}
    job = await h.info()
    assert job is not None and job.state == "completed" and job.deliveries == 1


async def test_failures_retry_with_backoff_then_complete(app_factory, queue, run_worker) -> None:
    app = app_factory()
    attempts: list[tuple[int, float]] = []

    @app.task("flaky", queue=queue, max_attempts=3, backoff=Backoff.fixed(0.2))
    async def flaky(ctx: Context, x: int) -> int:
        attempts.append((ctx.attempt, time.monotonic()))
        if ctx.attempt < 3:
            raise ConnectionError("upstream down")
        return x

    async with run_worker(app):
        h = await app.enqueue("flaky", 7)
        assert await h.result(timeout=10) == 7
    assert [a for a, _ in attempts] == [1, 2, 3]
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(attempts)]
    assert all(g >= 0.18 for g in gaps), gaps
    types = [e.type async for e in h.events()]
    assert types == [
        "queued",
        "active",
        "retrying",
        "queued",
        "active",
        "retrying",
        "queued",
        "active",
        "completed",
    ]


async def test_exhausted_attempts_dead_letter_with_error(app_factory, queue, run_worker) -> None:
    app = app_factory()

    @app.task("always", queue=queue, max_attempts=2, backoff=0.05)
    async def always(ctx: Context, x: int) -> int:
        raise ValueError(f"bad {x}")

    async with run_worker(app):
        h = await app.enqueue("always", 1)
        with pytest.raises(JobFailed, match="ValueError: bad 1"):
            await h.result(timeout=10)
    [dead] = await app.dead_letters(queue)
    assert (dead.job, dead.reason, dead.attempt) == (h.id, "max_attempts", 2)


async def test_fatal_goes_to_dead_letters_without_retry(app_factory, queue, run_worker) -> None:
    app = app_factory()
    calls = []

    @app.task("validate", queue=queue, max_attempts=5)
    async def validate(ctx: Context, wallet: str) -> str:
        calls.append(wallet)
        raise Fatal(f"INVALID_WALLET_ADDRESS: {wallet}")

    async with run_worker(app):
        h = await app.enqueue("validate", "nope")
        with pytest.raises(JobFailed, match="INVALID_WALLET_ADDRESS"):
            await h.result(timeout=5)
    assert calls == ["nope"]
    [dead] = await app.dead_letters(queue)
    assert dead.reason == "fatal"


async def test_retry_signal_without_spending_an_attempt(app_factory, queue, run_worker) -> None:
    app = app_factory()
    seen = []

    @app.task("limited", queue=queue, max_attempts=1)
    async def limited(ctx: Context, x: int) -> int:
        seen.append(ctx.attempt)
        if len(seen) < 3:
            raise Retry("rate limited", delay=0.05, count_attempt=False)
        return x

    async with run_worker(app):
        assert await (await app.enqueue("limited", 3)).result(timeout=5) == 3
    assert seen == [1, 1, 1]


async def test_timeout_fails_the_attempt(app_factory, queue, run_worker) -> None:
    app = app_factory()

    @app.task("slow", queue=queue, timeout=0.2, max_attempts=1)
    async def slow(ctx: Context, x: int) -> int:
        await asyncio.sleep(5)
        return x

    async with run_worker(app):
        h = await app.enqueue("slow", 1)
        started = time.monotonic()
        with pytest.raises(JobFailed, match=r"timed out after 0\.2 s"):
            await h.result(timeout=5)
        assert time.monotonic() - started < 2


async def test_plain_functions_run_in_threads(app_factory, queue, run_worker) -> None:
    app = app_factory()
    main_thread = threading.get_ident()

    @app.task("blocking", queue=queue)
    def blocking(ctx: Context, x: int) -> bool:
        time.sleep(0.05)
        ctx.progress_from_thread(50, "half way")
        return threading.get_ident() != main_thread

    async with run_worker(app):
        h = await app.enqueue("blocking", 1)
        assert await h.result(timeout=5) is True
    assert [e.progress async for e in h.events() if e.type == "progress"] == [50.0]


async def test_progress_events_arrive_in_order(app_factory, queue, run_worker) -> None:
    app = app_factory()

    @app.task("steps", queue=queue)
    async def steps(ctx: Context, n: int) -> int:
        for i in range(1, n + 1):
            await ctx.progress(100 * i / n, f"step {i}")
        return n

    async with run_worker(app):
        h = await app.enqueue("steps", 4)
        events = [e async for e in h.events()]
    assert [(e.type, e.progress, e.message) for e in events if e.type == "progress"] == [
        ("progress", 25.0, "step 1"),
        ("progress", 50.0, "step 2"),
        ("progress", 75.0, "step 3"),
        ("progress", 100.0, "step 4"),
    ]
    assert [e.type for e in events][-1] == "completed"
    assert [e.id for e in events] == sorted(
        (e.id for e in events), key=lambda i: tuple(map(int, i.split("-")))
    )


async def test_cancel_queued_job_never_runs(app_factory, queue, run_worker) -> None:
    app = app_factory()
    ran = []

    @app.task("t", queue=queue)
    async def t(ctx: Context, x: int) -> int:
        ran.append(x)
        return x

    h = await app.enqueue("t", 1)
    delayed = await app.enqueue("t", 2, delay=0.2)
    assert await h.cancel() and await delayed.cancel()
    async with run_worker(app):
        await asyncio.sleep(0.5)
        with pytest.raises(JobCancelled):
            await h.result(timeout=1)
    assert ran == [] and await delayed.state() == "cancelled"


async def test_cancel_active_job_cancels_its_handler(app_factory, queue, run_worker) -> None:
    app = app_factory()
    started, stopped = asyncio.Event(), asyncio.Event()

    @app.task("long", queue=queue, lease=0.6)
    async def long(ctx: Context, x: int) -> int:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return x

    async with run_worker(app):
        h = await app.enqueue("long", 1)
        await asyncio.wait_for(started.wait(), 5)
        assert await h.cancel()
        await asyncio.wait_for(stopped.wait(), 5)
        with pytest.raises(JobCancelled):
            await h.result(timeout=5)
    assert (await app.stats(queue)).active == 0


async def test_pause_stops_delivery_until_resume(app_factory, queue, run_worker) -> None:
    app = app_factory()

    @app.task("t", queue=queue)
    async def t(ctx: Context, x: int) -> int:
        return x

    await app.pause(queue)
    async with run_worker(app):
        h = await app.enqueue("t", 1)
        await asyncio.sleep(0.4)
        assert await h.state() == "queued" and (await app.stats(queue)).paused
        await app.resume(queue)
        assert await h.result(timeout=5) == 1


async def test_dead_letters_replay_and_purge(app_factory, queue, run_worker) -> None:
    app = app_factory()
    healthy = asyncio.Event()

    @app.task("fragile", queue=queue, max_attempts=1)
    async def fragile(ctx: Context, x: int) -> int:
        if not healthy.is_set():
            raise RuntimeError("dependency down")
        return x * 10

    async with run_worker(app, concurrency=20):
        handles = [await app.enqueue("fragile", i) for i in range(6)]
        for h in handles:
            with pytest.raises(JobFailed):
                await h.result(timeout=5)
        dead = await app.dead_letters(queue)
        assert sorted(d.job for d in dead) == sorted(h.id for h in handles)
        healthy.set()
        by_job = {d.job: d.id for d in dead}
        assert await app.replay_dead(queue, [by_job[handles[0].id], by_job[handles[1].id]]) == 2
        assert [await h.result(timeout=5) for h in handles[:2]] == [0, 10]
        assert len(await app.dead_letters(queue)) == 4
        assert await app.replay_dead(queue) == 4
        assert [await h.result(timeout=5) for h in handles] == [0, 10, 20, 30, 40, 50]
    assert await app.dead_letters(queue) == []


async def test_purge_removes_dead_letters_and_records(app_factory, queue, run_worker) -> None:
    app = app_factory()

    @app.task("bad", queue=queue)
    async def bad(ctx: Context, x: int) -> int:
        raise Fatal("no")

    async with run_worker(app):
        hs = [await app.enqueue("bad", i) for i in range(3)]
        for h in hs:
            with pytest.raises(JobFailed):
                await h.result(timeout=5)
    assert await app.purge_dead(queue) == 3
    assert await app.dead_letters(queue) == []
    assert await hs[0].state() is None


async def test_critical_job_overtakes_bulk_backlog(app_factory, queue, run_worker) -> None:
    app = app_factory()
    order: list[str] = []

    @app.task("work", queue=queue)
    async def work(ctx: Context, tag: str) -> None:
        order.append(tag)
        await asyncio.sleep(0.001)

    await app.enqueue_many(
        [EnqueueRequest(name="work", payload=f"bulk-{i}", priority="bulk") for i in range(5000)]
    )
    async with run_worker(app, concurrency=10):
        await until(lambda: len(order) >= 200)  # the worker is busy with the bulk backlog
        enqueued_at = len(order)
        await app.enqueue("work", "critical", priority="critical")
        await until(lambda: "critical" in order)
    overtaken = order.index("critical") - enqueued_at
    print(
        f"critical job started {overtaken} bulk starts after it was enqueued, "
        f"with {5000 - enqueued_at} bulk jobs still waiting"
    )
    assert overtaken <= 30  # within the first few fetches (batches of up to 10)
    assert sum(tag.startswith("bulk-") for tag in order) < 5000  # backlog not yet drained


async def test_starvation_guard_keeps_low_lane_moving(app_factory, queue, run_worker) -> None:
    app = app_factory()
    order: list[str] = []

    @app.task("work", queue=queue)
    async def work(ctx: Context, tag: str) -> None:
        order.append(tag)

    await app.enqueue_many(
        [EnqueueRequest(name="work", payload="high", priority="high") for _ in range(2000)]
    )
    await app.enqueue_many(
        [EnqueueRequest(name="work", payload="bulk", priority="bulk") for _ in range(50)]
    )
    async with run_worker(app, concurrency=1, starvation_share=0.1):
        await until(lambda: order.count("bulk") >= 5, timeout=20)
    first_bulk = order.index("bulk")
    print(
        f"first bulk job after {first_bulk} high jobs; bulk share of first 200: "
        f"{order[:200].count('bulk') / 200:.2f}"
    )
    assert first_bulk < 2000 and order.count("high") < 2000


async def test_worker_survives_unknown_job_by_dead_lettering(
    app_factory, queue, run_worker
) -> None:
    # Dead only once no live worker has served the task for the grace (see test_roster).
    producer = app_factory()

    @producer.task("new-job", queue=queue)
    async def new_job(ctx: Context, x: int) -> int:
        return x

    consumer = app_factory()

    @consumer.task("old-job", queue=queue)
    async def old_job(ctx: Context, x: int) -> int:
        return x

    async with run_worker(consumer, unknown_grace=0.5):
        h = await producer.enqueue("new-job", 1)
        with pytest.raises(JobFailed, match="no handler"):
            await h.result(timeout=5)


async def test_stats_count_lanes_and_workers(app_factory, queue, run_worker) -> None:
    app = app_factory()
    gate = asyncio.Event()

    @app.task("hold", queue=queue)
    async def hold(ctx: Context, x: int) -> int:
        await gate.wait()
        return x

    await app.enqueue_many(
        [EnqueueRequest(name="hold", payload=i, priority="low") for i in range(5)]
    )
    await app.enqueue("hold", 9, delay=60)
    async with run_worker(app, concurrency=2, renew_interval=0.1, grace=1):
        try:
            await until(lambda: _active(app, queue, 2))
            stats = await app.stats(queue)
            assert stats.lanes["low"] == streamq.LaneStats(depth=3, pending=2)
            assert (stats.waiting, stats.active, stats.delayed, stats.workers) == (3, 2, 1, 1)
            assert stats.oldest_waiting_age >= 0
        finally:
            gate.set()


async def _active(app: App, queue: str, n: int) -> bool:
    return (await app.stats(queue)).active == n


async def test_shutdown_hands_back_unfinished_jobs_at_once(app_factory, queue, run_worker) -> None:
    app = app_factory()
    started = asyncio.Event()
    runs: list[int] = []

    @app.task("long", queue=queue, lease=60)
    async def long(ctx: Context, x: int) -> int:
        runs.append(ctx.deliveries)
        started.set()
        await asyncio.sleep(30 if len(runs) == 1 else 0)
        return x

    h = await app.enqueue("long", 4)
    async with run_worker(app, grace=0.2):
        await asyncio.wait_for(started.wait(), 5)
    # Handed back, not left to a 60 s lease: the next worker takes it straight away.
    assert await h.state() == "queued"
    async with run_worker(app):
        assert await h.result(timeout=5) == 4
    assert runs == [1, 1]  # a hand-back is not counted as a delivery
