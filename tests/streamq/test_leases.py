"""Leases kept by the worker's lease thread: a handler that blocks the event loop keeps its
lease (and its neighbours theirs), and the worker says which handler blocked the loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

import pytest

from streamq import Context, EnqueueRequest, JobFailed, _keys


async def test_a_blocked_loop_keeps_leases_and_names_the_handler(
    app_factory, queue, run_worker, caplog
) -> None:
    app = app_factory()
    runs: Counter[int] = Counter()

    @app.task("blocky", queue=queue, lease=0.3)
    async def blocky(ctx: Context, x: int) -> int:
        runs[x] += 1
        if x == 0:
            time.sleep(1.5)  # noqa: ASYNC251 - the fault under test: 5 x the lease
        else:
            await asyncio.sleep(0.05)
        return x

    handles = await app.enqueue_many(
        [EnqueueRequest(name="blocky", payload=i, id=f"b-{i}") for i in range(6)]
    )
    caplog.set_level(logging.WARNING, logger="streamq._leases")
    async with run_worker(app, reclaim_interval=0.1, blocked_loop_warning=0.5):
        assert [await h.result(timeout=20) for h in handles] == list(range(6))
        await asyncio.sleep(0.6)  # a wrongly reclaimed job would run again now
    assert runs == Counter(dict.fromkeys(range(6), 1))
    for h in handles:
        job = await h.info()
        assert job is not None and (job.state, job.deliveries) == ("completed", 1)
    assert "reclaimed" not in (await app.stats(queue)).totals
    blocked = [r.getMessage() for r in caplog.records if "blocked for" in r.getMessage()]
    assert len(blocked) == 1 and "handler blocky (job b-0)" in blocked[0], blocked


async def test_the_workers_task_definition_decides_lease_timeout_and_deliveries(
    app_factory, queue, run_worker
) -> None:
    """A producer running older code stored lease 30 s, max_deliveries 5 and no timeout; the
    worker's own definition (lease 0.5 s, max_deliveries 1, timeout 0.3 s) is what applies."""
    producer, worker_app = app_factory(), app_factory()

    @producer.task("slow", queue=queue, lease=30.0, max_deliveries=5)
    async def slow_then(ctx: Context, x: int) -> int:
        raise AssertionError  # the producer's copy never runs

    started = asyncio.Event()

    @worker_app.task("slow", queue=queue, lease=0.5, max_deliveries=1, timeout=0.3)
    async def slow(ctx: Context, x: int) -> int:
        started.set()
        await asyncio.sleep(2)
        return x

    h = await producer.enqueue("slow", 1)
    async with run_worker(worker_app):
        await asyncio.wait_for(started.wait(), 10)
        stored = await producer.redis.hmget(_keys.job(queue, h.id), "lease_ms", "max_deliveries")
        assert stored == [b"500", b"1"]
        with pytest.raises(JobFailed, match=r"timed out after 0.3 s"):
            await h.result(timeout=10)
