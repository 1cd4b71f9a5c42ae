"""Enqueue: dedup by id, batches, validation that writes nothing, delays and priorities."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

import streamq
from streamq import App, EnqueueRequest, InvalidJobId, InvalidPayload, UnknownJob, job_id


class Order(msgspec.Struct, frozen=True, kw_only=True):
    order_id: int
    sku: str


def make_app(app_factory: Callable[..., App], queue: str) -> App:
    app = app_factory()

    @app.task("ship", queue=queue)
    async def ship(ctx: streamq.Context, order: Order) -> str:
        return order.sku

    return app


async def key_count(app: App, queue: str) -> int:
    n = 0
    async for _ in app.redis.scan_iter(match=f"sq:{{{queue}}}:*"):
        n += 1
    return n


async def test_same_id_twice_returns_the_existing_job(app_factory, queue) -> None:
    app = make_app(app_factory, queue)
    first = await app.enqueue("ship", Order(order_id=1, sku="a"), id="order-1")
    again = await app.enqueue("ship", {"order_id": 2, "sku": "b"}, id="order-1")
    assert (first.deduplicated, again.deduplicated) == (False, True)
    job = await app.job(queue, "order-1")
    assert job is not None and job.payload == {"order_id": 1, "sku": "a"}
    stats = await app.stats(queue)
    assert stats.waiting == 1 and stats.totals["enqueued"] == 1


async def test_job_id_is_stable_and_distinguishes_parts() -> None:
    assert job_id("sync", "wallet", "req-1") == job_id("sync", "wallet", "req-1")
    assert job_id("sync", "ab", "c") != job_id("sync", "a", "bc")
    assert job_id("sync", "w").startswith("sync-")


async def test_twenty_concurrent_producers_create_each_id_once(
    app_factory, queue, run_worker
) -> None:
    app = make_app(app_factory, queue)
    ids = [f"o-{i}" for i in range(1000)]

    async def producer(seed: int) -> list[bool]:
        handles = await app.enqueue_many(
            [EnqueueRequest(name="ship", payload={"order_id": seed, "sku": i}, id=i) for i in ids]
        )
        return [h.deduplicated for h in handles]

    results = await asyncio.gather(*(producer(s) for s in range(20)))
    created = sum(not dup for batch in results for dup in batch)
    assert created == 1000
    stats = await app.stats(queue)
    assert stats.waiting == 1000 and stats.totals["enqueued"] == 1000
    async with run_worker(app, concurrency=100):
        for _ in range(200):
            stats = await app.stats(queue)
            if stats.totals.get("completed", 0) >= 1000:
                break
            await asyncio.sleep(0.05)
    assert stats.totals["completed"] == 1000


@pytest.mark.parametrize(
    ("name", "payload", "id", "error"),
    [
        ("shipp", {"order_id": 1, "sku": "a"}, None, UnknownJob),
        ("ship", {"order_id": "x", "sku": "a"}, None, InvalidPayload),
        ("ship", {"sku": "a"}, None, InvalidPayload),
        ("ship", {"order_id": 1, "sku": "a"}, "has space", InvalidJobId),
        ("ship", {"order_id": 1, "sku": "a"}, "x" * 201, InvalidJobId),
    ],
)
async def test_bad_input_raises_and_writes_nothing(
    app_factory, queue, name, payload, id, error
) -> None:
    app = make_app(app_factory, queue)
    await app.connect()
    with pytest.raises(error) as caught:
        await app.enqueue(name, payload, id=id)
    assert isinstance(caught.value, streamq.StreamqError)
    assert await key_count(app, queue) == 0


async def test_bad_payload_names_the_field(app_factory, queue) -> None:
    app = make_app(app_factory, queue)
    with pytest.raises(InvalidPayload) as caught:
        await app.enqueue("ship", {"order_id": "x", "sku": "a"})
    assert caught.value.path == "$.order_id"


async def test_unknown_job_names_known_ones(app_factory, queue) -> None:
    app = make_app(app_factory, queue)
    with pytest.raises(UnknownJob, match="known: ship"):
        await app.enqueue("shipp", {})


async def test_one_bad_job_in_a_batch_writes_none(app_factory, queue) -> None:
    app = make_app(app_factory, queue)
    await app.connect()
    with pytest.raises(InvalidPayload):
        await app.enqueue_many(
            [
                EnqueueRequest(name="ship", payload={"order_id": 1, "sku": "a"}),
                EnqueueRequest(name="ship", payload={"order_id": "bad", "sku": "a"}),
            ]
        )
    assert await key_count(app, queue) == 0


async def test_delayed_job_is_scheduled_then_runs(app_factory, queue, run_worker) -> None:
    app = make_app(app_factory, queue)
    h = await app.enqueue("ship", Order(order_id=1, sku="late"), delay=0.6)
    assert h.state_at_enqueue == "scheduled"
    async with run_worker(app):
        await asyncio.sleep(0.2)
        assert await h.state() == "scheduled"
        assert await h.result(timeout=5) == "late"
    job = await h.info()
    assert job is not None and job.started_at is not None and job.created_at is not None
    assert job.started_at - job.created_at >= 0.55


@pytest.mark.parametrize(
    ("priority", "lane"),
    [(10, "critical"), (7, "high"), (5, "normal"), (3, "low"), (1, "bulk"), ("high", "high")],
)
async def test_priorities_map_onto_lanes(app_factory, queue, priority: Any, lane: str) -> None:
    app = make_app(app_factory, queue)
    await app.enqueue("ship", Order(order_id=1, sku="a"), priority=priority)
    stats = await app.stats(queue)
    assert stats.lanes[lane].depth == 1


async def test_dedup_ttl_lets_a_finished_id_run_again(app_factory, queue, run_worker) -> None:
    app = make_app(app_factory, queue)
    async with run_worker(app):
        h = await app.enqueue("ship", Order(order_id=1, sku="a"), id="again", dedup_ttl=0.3)
        await h.result(timeout=5)
        assert (await app.enqueue("ship", Order(order_id=1, sku="b"), id="again")).deduplicated
        await asyncio.sleep(0.4)
        h2 = await app.enqueue("ship", Order(order_id=1, sku="b"), id="again")
        assert not h2.deduplicated
        assert await h2.result(timeout=5) == "b"


async def test_enqueue_when_redis_is_down_raises_broker_unavailable(uniq) -> None:
    app = App("down", redis_url="redis://127.0.0.1:1/0")

    @app.task("t", queue=uniq("q"))
    async def t(ctx: streamq.Context, x: int) -> int:
        return x

    with pytest.raises(streamq.BrokerUnavailable):
        await app.enqueue("t", 1)
    await app.close()


async def test_queue_full_refuses_enqueue_but_settles_running_jobs(valkey_server, uniq) -> None:
    """Under maxmemory/noeviction new jobs are refused cleanly; in-flight ones still finish."""
    client = aioredis.Redis.from_url(valkey_server)
    queue = uniq("q")
    app = App("oom", redis_url=valkey_server)
    release = asyncio.Event()

    @app.task("hold", queue=queue)
    async def hold(ctx: streamq.Context, x: int) -> int:
        await release.wait()
        return x

    worker = streamq.Worker(app, concurrency=5)
    task = asyncio.create_task(worker.run())
    try:
        handles = [await app.enqueue("hold", i) for i in range(5)]
        for _ in range(100):
            if (await app.stats(queue)).active == 5:
                break
            await asyncio.sleep(0.02)
        used = (await client.info("memory"))["used_memory"]
        await client.config_set("maxmemory", used)
        with pytest.raises(streamq.QueueFull):
            await app.enqueue("hold", 99)
        release.set()
        assert [await h.result(timeout=5) for h in handles] == [0, 1, 2, 3, 4]
    finally:
        await client.config_set("maxmemory", 0)
        worker.stop()
        await task
        await app.close()
        await client.aclose()


async def test_queue_names_that_would_break_the_hash_tag_are_refused(app_factory) -> None:
    app = app_factory()
    with pytest.raises(streamq.ConfigurationError, match="invalid queue name"):

        @app.task("t", queue="orders}{x")
        async def t(ctx: streamq.Context, x: int) -> int:
            return x

    with pytest.raises(streamq.InvalidQueueName):
        await app.stats("a{b}")
