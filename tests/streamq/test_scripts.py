"""The lease scripts called directly: renewal keeps a delivery, reports a lost one and a
requested cancel; progress and outcomes from a stale token are refused."""

from __future__ import annotations

import asyncio

from streamq import App, Context, _keys
from streamq._scripts import Fetched, Lease, Renewed, Settlement
from streamq._types import LANES


async def _setup(app_factory, queue: str) -> App:
    app = app_factory()

    @app.task("t", queue=queue, lease=0.001)
    async def t(ctx: Context, x: int) -> int:
        return x

    await app.enqueue("t", 1, id="job-1")
    return app


async def _fetch(app: App, queue: str, consumer: str) -> list[Fetched]:
    reply = await app.scripts.fetch(
        queue,
        consumer=consumer,
        count=10,
        promote_limit=100,
        may_take_suspect=True,
        lanes=LANES,
    )
    return reply.jobs


def _lease(job: Fetched) -> Lease:
    return Lease(job.job_id, job.lane, job.entry_id, job.fence)


async def _renew(app: App, queue: str, consumer: str, job: Fetched) -> Renewed:
    return await app.scripts.renew(
        queue, consumer=consumer, heartbeat_ms=15000, leases=[_lease(job)]
    )


async def test_renew_keeps_then_reports_lost_and_cancel(app_factory, queue) -> None:
    app = await _setup(app_factory, queue)
    [job] = await _fetch(app, queue, "A")
    assert await _renew(app, queue, "A", job) == Renewed(lost=[], cancel_requested=[])
    # Another worker reclaims the (1 ms) lease: A's token is void from then on.
    await asyncio.sleep(0.01)
    reclaimed = await app.scripts.reclaim(
        queue, consumer="B", min_idle_ms=0, count=100, cursors=dict.fromkeys(LANES, "0-0")
    )
    assert reclaimed.requeued == 1
    assert await _renew(app, queue, "A", job) == Renewed(lost=["job-1"], cancel_requested=[])
    progressed = await app.scripts.progress(queue, _lease(job), percent=50, message="stale")
    assert progressed is False
    [again] = await _fetch(app, queue, "B")
    assert again.fence == job.fence + 1  # a new token for the new delivery
    # The old token on the new entry is refused too: the lease check compares both.
    stale_token = Lease(again.job_id, again.lane, again.entry_id, job.fence)
    assert await app.scripts.progress(queue, stale_token, percent=60, message="") is False
    assert await app.scripts.progress(queue, _lease(again), percent=70, message="ok") is True
    await app.cancel(queue, "job-1")
    assert await _renew(app, queue, "B", again) == Renewed(lost=[], cancel_requested=["job-1"])
    stale = Settlement(
        outcome="completed",
        job_id=job.job_id,
        lane=job.lane,
        entry_id=job.entry_id,
        fence=job.fence,
        ttl_ms=1000,
    )
    assert await app.scripts.settle(queue, [stale]) == [False]
    [workers] = [await app.redis.zrange(_keys.workers(queue), 0, -1)]
    assert set(workers) == {b"A", b"B"}


async def test_progress_needs_the_delivery_entry_as_well_as_its_token(app_factory, queue) -> None:
    app = await _setup(app_factory, queue)
    [job] = await _fetch(app, queue, "A")
    # Right token, wrong entry (as a delivery of another entry of the same job would have).
    other_entry = Lease(job.job_id, job.lane, "0-1", job.fence)
    assert await app.scripts.progress(queue, other_entry, percent=10, message="") is False
    assert await app.scripts.progress(queue, _lease(job), percent=20, message="x") is True
    info = await app.job(queue, "job-1")
    assert info is not None
    assert info.progress == 20.0


async def test_pause_script_flags_the_queue_and_says_so(app_factory, queue) -> None:
    app = await _setup(app_factory, queue)
    await app.pause(queue)
    assert await app.redis.exists(_keys.paused(queue)) == 1
    await app.resume(queue)
    assert await app.redis.exists(_keys.paused(queue)) == 0
    types = [e.type for e in await app.read_events(queue)]
    assert types[-2:] == ["paused", "resumed"]


async def test_a_suspect_waits_ahead_of_the_backlog_and_runs_alone(app_factory, queue) -> None:
    """A job reclaimed from a dead worker is quarantined: a busy worker gets no new job while it
    waits, and the next worker with nothing in flight gets it alone, before the backlog."""
    app = await _setup(app_factory, queue)
    [_job] = await _fetch(app, queue, "A")
    for i in range(5):
        await app.enqueue("t", i, id=f"backlog-{i}")
    await asyncio.sleep(0.01)  # A dies; its 1 ms lease runs out
    reclaimed = await app.scripts.reclaim(
        queue, consumer="R", min_idle_ms=0, count=100, cursors=dict.fromkeys(LANES, "0-0")
    )
    assert reclaimed.requeued == 1
    assert (await app.job(queue, "job-1")).state == "queued"  # type: ignore[union-attr]

    async def fetch(consumer: str, idle: bool) -> tuple[list[str], int]:
        reply = await app.scripts.fetch(
            queue,
            consumer=consumer,
            count=10,
            promote_limit=100,
            may_take_suspect=idle,
            lanes=LANES,
        )
        return [j.job_id for j in reply.jobs], reply.suspects_waiting

    assert await fetch("busy", idle=False) == ([], 1)
    assert await fetch("idle", idle=True) == (["job-1"], 0)
    assert await fetch("idle", idle=False) == ([f"backlog-{i}" for i in range(5)], 0)
    rerun = await app.job(queue, "job-1")
    assert rerun is not None and rerun.state == "active" and rerun.deliveries == 2


async def test_a_max_deliveries_dead_letter_says_if_the_worker_lived(app_factory, queue) -> None:
    app = app_factory()

    @app.task("t", queue=queue, lease=0.001, max_deliveries=1)
    async def t(ctx: Context, x: int) -> int:
        return x

    await app.enqueue("t", 1, id="alive-1")
    await app.enqueue("t", 2, id="gone-1")
    jobs = await _fetch(app, queue, "A")  # "A" takes both, then "A" stalls with one of them
    await app.scripts.renew(queue, consumer="A", heartbeat_ms=15000, leases=[])
    await app.redis.zrem(_keys.workers(queue), "A")
    await app.redis.zadd(_keys.workers(queue), {"A": 0})  # a heartbeat from long ago: gone
    await asyncio.sleep(0.01)
    await app.scripts.reclaim(
        queue, consumer="R", min_idle_ms=0, count=1, cursors={jobs[1].lane: "0-0"}
    )
    # Now "A" beats again (alive, yet it let the other lease run out).
    await app.scripts.renew(queue, consumer="A", heartbeat_ms=15000, leases=[])
    await app.scripts.reclaim(
        queue, consumer="R", min_idle_ms=0, count=100, cursors=dict.fromkeys(LANES, "0-0")
    )
    errors = {d.job: d.error for d in await app.dead_letters(queue)}
    assert "kept dying" in errors[jobs[0].job_id]
    assert "alive but lost the lease" in errors[jobs[1].job_id]
