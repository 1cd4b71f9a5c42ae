"""Rate limits: starts per window across workers and processes, and Retry without an attempt."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import pytest

from streamq import App, ConfigurationError, Context, EnqueueRequest, Retry, _keys
from streamq._ratelimit import get_rate_limit
from tests.streamq.procs import spawn_worker, stop


async def until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if check() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.02)


async def test_limit_is_stored_changed_and_removed(app_factory, queue) -> None:
    app = app_factory()
    assert await get_rate_limit(app.broker, queue) is None
    await app.rate_limit(queue, 10, per=2.0)
    limit = await get_rate_limit(app.broker, queue)
    assert limit is not None and (limit.limit, limit.per) == (10, 2.0)
    await app.rate_limit(queue, None)
    assert await get_rate_limit(app.broker, queue) is None
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigurationError):
            await app.rate_limit(queue, bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        await app.rate_limit(queue, 5, per=0)


async def test_in_process_starts_stay_within_the_window(app_factory, queue, run_worker) -> None:
    app = app_factory()
    starts: list[float] = []

    @app.task("tick", queue=queue)
    async def tick(ctx: Context, n: int) -> None:
        starts.append(time.monotonic())

    await app.rate_limit(queue, 5, per=0.5)
    await app.enqueue_many([EnqueueRequest(name="tick", payload=i) for i in range(20)])
    before = time.monotonic()  # every admission happens after this
    async with run_worker(app, concurrency=20):
        await until(lambda: len(starts) >= 20, 30)
    assert len(starts) == 20
    # The limiter admits at most 5 starts in any 0.5 s of its clock, and a handler starts only
    # after its admission (later still on a loaded machine). So the 20th start comes at least
    # three windows after the first admission, and no more than 5 are seen in the first window.
    assert max(starts) - before >= 1.45
    assert len([t for t in starts if t - before < 0.45]) <= 5


async def test_removing_the_limit_applies_to_running_workers(
    app_factory, queue, run_worker
) -> None:
    app = app_factory()
    done: list[int] = []

    @app.task("tick", queue=queue)
    async def tick(ctx: Context, n: int) -> None:
        done.append(n)

    await app.rate_limit(queue, 1, per=60.0)
    await app.enqueue_many([EnqueueRequest(name="tick", payload=i) for i in range(10)])
    async with run_worker(app, concurrency=10):
        await asyncio.sleep(1.0)
        assert len(done) == 1
        await app.rate_limit(queue, None)
        await until(lambda: len(done) >= 10, 5)
    assert sorted(done) == list(range(10))


async def test_handler_rate_limited_retry_keeps_its_attempt(app_factory, queue, run_worker) -> None:
    app = app_factory()
    calls: list[int] = []

    @app.task("call-api", queue=queue, max_attempts=1)
    async def call_api(ctx: Context, n: int) -> int:
        calls.append(ctx.attempt)
        if len(calls) < 3:
            raise Retry("429 from the provider", delay=0.1, count_attempt=False)
        return n * 2

    await app.rate_limit(queue, 10, per=1.0)
    async with run_worker(app):
        h = await app.enqueue("call-api", 21)
        assert await h.result(timeout=10) == 42
    # Two rate-limited tries did not use up the only attempt.
    assert calls == [1, 1, 1]
    job = await h.info()
    assert job is not None and job.attempt == 1 and job.deliveries == 3


async def test_three_worker_processes_share_twenty_starts_per_second(
    app_factory, uniq: Callable[[str], str], redis_url: str, valkey_url: str
) -> None:
    if redis_url != valkey_url:
        pytest.skip("the multi-process run is timed on the embedded Valkey only")
    queue = uniq("rl")
    app: App = app_factory()

    @app.task("limited", queue=queue)
    async def limited(ctx: Context, n: int) -> None: ...

    await app.rate_limit(queue, 20, per=1.0)
    handles = await app.enqueue_many(
        [EnqueueRequest(name="limited", payload=i) for i in range(300)]
    )
    procs = [
        spawn_worker(
            redis_url,
            queue,
            name=f"w{i}",
            concurrency=10,
            app="tests.streamq.orch_app:app",
            env={"ORCH_QUEUE": queue},
        )
        for i in range(3)
    ]

    async def started_at() -> list[float]:
        # A start is the broker's delivery time (the fetch script's clock), not when the
        # handler first got CPU in a freshly started process.
        pipe = app.redis.pipeline(transaction=False)
        for h in handles:
            pipe.hget(_keys.job(queue, h.id), "started_at")
        return [int(raw) / 1000 for raw in await pipe.execute() if raw]

    try:
        deadline = time.monotonic() + 30
        while not (starts := await started_at()):
            assert time.monotonic() < deadline, "no worker started a job"
            await asyncio.sleep(0.1)
        first = min(starts)
        await asyncio.sleep(max(first + 10.5 - time.time(), 0))
        starts = await started_at()
        ran = await app.redis.llen(_keys.custom(queue, "test-starts"))
    finally:
        for proc in procs:
            stop(proc)
    per_second = Counter(int(t - first) for t in starts)
    counts = [per_second[s] for s in range(10)]
    print(f"starts per second over 10 s (limit 20/s, 3 worker processes): {counts}")
    # Admissions are at most 20 in any second of the limiter's clock; a delivery follows its
    # admission by the fetch's latency, which a loaded machine stretches, so deliveries are
    # held to the limit over the run rather than in every one-second bucket: at most 10
    # seconds' worth plus the window the first delivery's admission may have started in.
    in_ten = [t for t in starts if t - first < 10.0]
    assert len(in_ten) <= 20 * 11, counts
    assert ran >= 100 and len(in_ten) >= 100, counts  # the three processes did share the work


async def test_a_limit_set_while_the_worker_is_idle_holds_for_the_next_jobs(
    app_factory, queue, run_worker
) -> None:
    app = app_factory()
    starts: list[float] = []

    @app.task("tick", queue=queue)
    async def tick(ctx: Context, n: int) -> None:
        starts.append(time.monotonic())

    await app.register_queue(queue)
    async with run_worker(app, concurrency=20):
        await asyncio.sleep(1.5)  # idle: its fetch loop has read "no limit" more than once
        await app.rate_limit(queue, 2, per=1.0)
        limited_at = time.monotonic()
        await app.enqueue_many([EnqueueRequest(name="tick", payload=i) for i in range(20)])
        await until(lambda: len(starts) >= 4, timeout=30)
    # Admissions are at most 2 in any 1 s of Redis time, all after the limit was set; a start
    # is seen only after its admission, so at most 2 can be seen within 1 s of setting it.
    early = [t for t in starts if t - limited_at < 1.0]
    print(f"{len(early)} of 20 jobs started within 1 s of the limit (2 per 1 s) being set")
    assert len(starts) >= 4 and len(early) <= 2
