"""Deleting a queue: every key of it goes (jobs in every state with their logs, lanes, index,
dead letters, delayed set, flows, schedules, rate limit, events) and its registry entry;
refused while live workers serve it unless forced; resumable when cut short."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from streamq import App, Context, EnqueueRequest, Fatal, Flow, QueueInUse, _keys
from streamq._codec import decode_spec
from streamq._context import Delivery
from streamq._scripts import Settlement
from streamq._types import LANES

# Keys that expire by themselves and are left to: script replies (30 s).
_EXPIRING = (":reply:",)


def _app(app_factory, queue: str) -> App:
    app = app_factory()

    @app.task("t", queue=queue, max_attempts=2)
    async def t(ctx: Context, x: int) -> int:
        if x < 0:
            raise Fatal("negative")
        return x

    @app.task("parent", queue=queue)
    async def parent(ctx: Context, x: int) -> int:
        return x

    return app


async def _keys_of(app: App, queue: str) -> list[str]:
    """The queue's keys (tests may scan; the product never does)."""
    r: aioredis.Redis = app.redis
    found = [k.decode() async for k in r.scan_iter(match=f"sq:{{{queue}}}:*", count=1000)]
    return sorted(k for k in found if not any(e in k for e in _EXPIRING))


async def _every_state(app: App, queue: str) -> None:
    await app.enqueue_many(
        [
            EnqueueRequest(name="t", payload=i, id=f"q{i}", priority=LANES[i % len(LANES)])
            for i in range(450)
        ]
    )
    await app.enqueue("t", 1, id="later", delay=600, tags=["wallet:w1", "team:a"])
    await app.enqueue_flow(Flow(name="parent", payload=1, id="p", children=[
        Flow(name="t", payload=2, id="child")
    ]))  # fmt: skip
    fetched = (
        await app.scripts.fetch(
            queue, consumer="w", count=6, promote_limit=0, may_take_suspect=True, lanes=LANES
        )
    ).jobs
    done, dead, retry, cancel, _active, logged = fetched
    d = Delivery(
        queue=queue,
        lane=logged.lane,
        entry_id=logged.entry_id,
        job_id=logged.job_id,
        spec=decode_spec(logged.spec),
        attempt=logged.attempt,
        fence=logged.fence,
        deliveries=logged.deliveries,
    )
    assert await Context(app, d).log("a line")
    await app.scripts.settle(
        queue,
        [
            Settlement("completed", done.job_id, done.lane, done.entry_id, done.fence, ttl_ms=600_000),
            Settlement("dead", dead.job_id, dead.lane, dead.entry_id, dead.fence, data="x", ttl_ms=600_000),
            Settlement("retry", retry.job_id, retry.lane, retry.entry_id, retry.fence, data="y", delay_ms=600_000),
            Settlement("cancelled", cancel.job_id, cancel.lane, cancel.entry_id, cancel.fence, ttl_ms=600_000),
            Settlement("completed", logged.job_id, logged.lane, logged.entry_id, logged.fence, ttl_ms=600_000),
        ],
    )  # fmt: skip
    await app.add_schedule("t", 1, every=3600, queue=queue, id="hourly")
    await app.rate_limit(queue, 100)
    states = {j.state async for j in app.jobs(queue)}
    assert states == {
        "queued", "active", "scheduled", "retrying", "completed", "dead", "cancelled",
        "waiting-children",
    }  # fmt: skip


async def test_every_key_goes(app_factory, queue) -> None:
    app = _app(app_factory, queue)
    await _every_state(app, queue)
    before = await _keys_of(app, queue)
    assert len(before) > 450 and _keys.job_log(queue, "q25") in before
    assert _keys.tag_index(queue, "team:a") in before and _keys.tags(queue) in before
    assert queue in await app.queue_names()

    deleted = await app.delete_queue(queue)
    assert (
        deleted.done and deleted.jobs == 450 + 1 + 2
    )  # jobs, the delayed one, the flow's parent and child
    assert await _keys_of(app, queue) == []
    assert queue not in await app.queue_names()
    # The queue can be used again from the same process.
    await app.enqueue("t", 1, id="again")
    assert queue in await app.queue_names()


async def test_cut_short_it_resumes(app_factory, queue) -> None:
    app = _app(app_factory, queue)
    await app.enqueue_many([EnqueueRequest(name="t", payload=i, id=f"j{i}") for i in range(1000)])
    first = await app.delete_queue(queue, max_batches=2)
    assert (first.done, first.jobs) == (False, 200)
    assert queue in await app.queue_names()
    rest = await app.delete_queue(queue)
    assert (rest.done, rest.jobs) == (True, 800)
    assert await _keys_of(app, queue) == []


async def test_refused_while_workers_live_unless_forced(app_factory, queue, run_worker) -> None:
    app = _app(app_factory, queue)
    await app.enqueue("t", 1, id="a")
    async with run_worker(app):
        await app.handle(queue, "a").result(timeout=20)
        with pytest.raises(QueueInUse) as refused:
            await app.delete_queue(queue)
        assert refused.value.workers == 1
        assert await app.job(queue, "a") is not None
        await app.enqueue_many([EnqueueRequest(name="t", payload=i, id=f"b{i}") for i in range(50)])
        deleted = await app.delete_queue(queue, force=True)
        assert deleted.done
        assert await app.job(queue, "a") is None
        await asyncio.sleep(0)
    assert queue not in await app.queue_names()
