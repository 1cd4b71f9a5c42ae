"""Changing a waiting job's priority: its entry moves lanes atomically (one entry, on the new
lane), delayed jobs keep their time, and active or finished jobs are refused; racing workers
leaves every job run exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from streamq import App, Context, EnqueueRequest, InvalidJob, JobNotFound, JobStateConflict, _keys
from streamq._codec import decode_spec
from streamq._scripts import Settlement
from streamq._types import LANES


def _app(app_factory, queue: str, runs: Counter[str] | None = None) -> App:
    app = app_factory()

    @app.task("t", queue=queue)
    async def t(ctx: Context, x: int) -> int:
        if runs is not None:
            runs[ctx.job_id] += 1
        return x

    return app


async def _fetch(app: App, queue: str, count: int = 1) -> list:
    reply = await app.scripts.fetch(
        queue, consumer="w", count=count, promote_limit=100, may_take_suspect=True, lanes=LANES
    )
    return reply.jobs


async def test_a_queued_job_moves_to_the_back_of_its_new_lane(app_factory, queue) -> None:
    app = _app(app_factory, queue)
    await app.enqueue_many([EnqueueRequest(name="t", payload=i, id=f"n{i}") for i in range(3)])
    await app.enqueue("t", 9, id="h0", priority="high")
    assert await app.set_priority(queue, "n2", "high") is True
    assert await app.set_priority(queue, "n2", 7) is False  # 7 is high: already there

    r = app.redis
    assert await r.xlen(_keys.lane(queue, "normal")) == 2
    assert await r.xlen(_keys.lane(queue, "high")) == 2
    job = await app.job(queue, "n2")
    assert job is not None and (job.state, job.priority) == ("queued", "high")
    [e] = [e for e in await app.read_events(queue, count=100) if e.job == "n2"][-1:]
    assert e.type == "queued" and e.message == "priority normal -> high"

    fetched = await _fetch(app, queue, 4)
    assert [j.job_id for j in fetched] == ["h0", "n2", "n0", "n1"]
    assert [decode_spec(j.spec).lane for j in fetched] == ["high", "high", "normal", "normal"]
    listed = [j.id async for j in app.jobs(queue, state="active", lane="high")]
    assert sorted(listed) == ["h0", "n2"]


async def test_delayed_jobs_keep_their_time_and_run_on_the_new_lane(app_factory, queue) -> None:
    app = _app(app_factory, queue)
    await app.enqueue("t", 1, id="later", delay=0.2)
    before = await app.job(queue, "later")
    assert await app.set_priority(queue, "later", "critical")
    after = await app.job(queue, "later")
    assert before is not None and after is not None
    assert (after.state, after.priority, after.run_at) == ("scheduled", "critical", before.run_at)
    deadline = asyncio.get_running_loop().time() + 20
    jobs: list = []
    while not jobs:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
        jobs = await _fetch(app, queue)
    [f] = jobs
    assert (f.job_id, f.lane, decode_spec(f.spec).lane) == ("later", "critical", "critical")


async def test_refusals(app_factory, queue) -> None:
    app = _app(app_factory, queue)
    await app.enqueue("t", 1, id="run")
    [f] = await _fetch(app, queue)
    with pytest.raises(JobStateConflict, match="it is active; only waiting") as refused:
        await app.set_priority(queue, "run", "high")
    assert refused.value.state == "active"
    await app.scripts.settle(
        queue, [Settlement("completed", f.job_id, f.lane, f.entry_id, f.fence, ttl_ms=60_000)]
    )
    with pytest.raises(JobStateConflict, match="it is completed"):
        await app.set_priority(queue, "run", "high")
    with pytest.raises(JobNotFound):
        await app.set_priority(queue, "nobody", "high")
    with pytest.raises(InvalidJob, match="priority must be one of"):
        await app.set_priority(queue, "run", "urgent")


async def test_racing_workers_every_job_runs_once(app_factory, queue, run_worker) -> None:
    runs: Counter[str] = Counter()
    app = _app(app_factory, queue, runs)
    n = 300
    ids = [f"r{i}" for i in range(n)]
    await app.enqueue_many(
        [EnqueueRequest(name="t", payload=i, id=job_id) for i, job_id in enumerate(ids)]
    )
    moved = refused = 0
    async with run_worker(app, concurrency=4):
        for k, job_id in enumerate(ids):
            try:
                moved += await app.set_priority(queue, job_id, LANES[k % len(LANES)])
            except JobStateConflict as exc:
                assert exc.state in ("active", "completed")
                refused += 1
        for job_id in ids:
            await app.handle(queue, job_id).result(timeout=30)
    assert runs == Counter(dict.fromkeys(ids, 1))
    for lane in LANES:  # no entry left behind on any lane
        assert await app.redis.xlen(_keys.lane(queue, lane)) == 0
    assert moved + refused > 0
