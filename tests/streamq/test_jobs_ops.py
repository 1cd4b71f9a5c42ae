"""Operations on jobs: retry, promote, remove, drain and clean, on one job, many, or all a
filter matches; each refuses a job in the wrong state, and racing a worker or the scheduler
leaves every job in exactly one state."""

from __future__ import annotations

import asyncio

import pytest

from streamq import App, Context, EnqueueRequest, Fatal, JobNotFound, JobStateConflict, _keys
from streamq._scripts import Settlement
from streamq._types import LANES


def _app(app_factory, queue: str) -> App:
    app = app_factory()

    @app.task("t", queue=queue, max_attempts=2)
    async def t(ctx: Context, x: int) -> int:
        if x < 0:
            raise Fatal("negative")
        return x

    return app


async def _fetch(app: App, queue: str, count: int) -> list:
    reply = await app.scripts.fetch(
        queue, consumer="w", count=count, promote_limit=1000, may_take_suspect=True, lanes=LANES
    )
    return reply.jobs


async def _kill(app: App, queue: str, n: int, prefix: str = "d") -> list[str]:
    """n dead jobs."""
    await app.enqueue_many(
        [EnqueueRequest(name="t", payload=-1, id=f"{prefix}{i}") for i in range(n)]
    )
    ids: list[str] = []
    while len(ids) < n:
        jobs = await _fetch(app, queue, 500)
        await app.scripts.settle(
            queue,
            [
                Settlement("dead", j.job_id, j.lane, j.entry_id, j.fence, data="x", ttl_ms=600_000)
                for j in jobs
            ],
        )
        ids.extend(j.job_id for j in jobs)
    return ids


async def test_retry_promote_remove_one(app_factory, queue, run_worker) -> None:
    app = _app(app_factory, queue)
    [dead] = await _kill(app, queue, 1)
    with pytest.raises(JobStateConflict, match="it is dead; promote applies to scheduled"):
        await app.promote(queue, dead)
    later = await app.enqueue("t", 5, id="later", delay=600)
    with pytest.raises(JobStateConflict) as refused:
        await app.retry(queue, "later")
    assert refused.value.state == "scheduled"
    with pytest.raises(JobNotFound):
        await app.retry(queue, "nobody")

    await app.promote(queue, "later")
    async with run_worker(app):
        assert await later.result(timeout=10) == 5
    done = await app.job(queue, "later")
    assert done is not None and done.state == "completed"
    await app.retry(queue, "later")  # a completed job runs again, with fresh attempts
    job = await app.job(queue, "later")
    assert job is not None and job.state == "queued" and job.attempt == 1 and job.result is None
    assert [j.id async for j in app.jobs(queue, state="completed")] == []

    await app.retry(queue, dead)
    job = await app.job(queue, dead)
    assert job is not None and (job.state, job.attempt, job.error) == ("queued", 1, None)
    assert [j.id async for j in app.jobs(queue, state="dead")] == []
    with pytest.raises(JobStateConflict, match="it is queued"):
        await app.remove(queue, dead)
    async with run_worker(app):
        await app.handle(queue, "later").result(timeout=10)
        while (await app.job(queue, dead)).state != "dead":  # type: ignore[union-attr]
            await asyncio.sleep(0.02)
    await app.remove(queue, dead)
    assert await app.job(queue, dead) is None
    assert [j.id async for j in app.jobs(queue)] == ["later"]


async def test_many_and_filter_wide(app_factory, queue) -> None:
    app = _app(app_factory, queue)
    ids = await _kill(app, queue, 450)
    outcome = await app.operate(queue, "retry", [*ids[:10], "nobody"])
    assert (outcome.done, outcome.missing) == (10, ["nobody"])
    again = await app.operate(queue, "retry", ids[:3])
    assert again.done == 0 and again.refused == dict.fromkeys(ids[:3], "queued")
    # A bounded run that stops and resumes from its cursor.
    first = await app.operate_matching(queue, "retry", state="dead", max_jobs=200)
    assert first.done == 200 and first.next is not None
    rest = await app.operate_matching(queue, "retry", state="dead", cursor=first.next)
    assert rest.done == 240 and rest.next is None
    assert [j async for j in app.jobs(queue, state="dead")] == []
    queued = [j.id async for j in app.jobs(queue, state="queued")]
    assert sorted(queued) == sorted(ids)


async def test_drain_keeps_active_and_clean_removes_old(app_factory, queue) -> None:
    app = _app(app_factory, queue)
    await app.enqueue_many([EnqueueRequest(name="t", payload=i, id=f"q{i}") for i in range(30)])
    await app.enqueue("t", 1, id="s1", delay=600)
    active = await _fetch(app, queue, 5)
    assert await app.drain(queue) == 26
    left = [(j.id, j.state) async for j in app.jobs(queue)]
    assert sorted(left) == sorted((j.job_id, "active") for j in active)
    await app.scripts.settle(
        queue,
        [
            Settlement("completed", j.job_id, j.lane, j.entry_id, j.fence, ttl_ms=600_000)
            for j in active
        ],
    )
    assert await app.clean(queue, older_than=60) == 0
    await asyncio.sleep(0.05)
    assert await app.clean(queue, older_than=0.01) == 5
    assert [j async for j in app.jobs(queue)] == []


async def test_promote_racing_the_scheduler(app_factory, queue, redis_url) -> None:
    """Due jobs promoted by hand while fetches promote them too: each ends queued or active
    exactly once, with one lane entry."""
    app = _app(app_factory, queue)
    n = 300
    await app.enqueue_many(
        [EnqueueRequest(name="t", payload=i, id=f"p{i}", delay=0.05) for i in range(n)]
    )
    await asyncio.sleep(0.06)
    ids = [f"p{i}" for i in range(n)]
    results = await asyncio.gather(
        *(app.operate(queue, "promote", ids[k : k + 20]) for k in range(0, n, 20)),
        *(_fetch(app, queue, 10) for _ in range(10)),
    )
    promoted = sum(r.done for r in results[: n // 20])  # type: ignore[union-attr]
    fetched = [j.job_id for r in results[n // 20 :] for j in r]  # type: ignore[union-attr]
    queued = [j.id async for j in app.jobs(queue, state="queued")]
    active = [j.id async for j in app.jobs(queue, state="active")]
    assert sorted(queued + active) == sorted(ids)
    assert sorted(active) == sorted(fetched)
    assert 0 < promoted <= n
    entries = sum([await app.redis.xlen(_keys.lane(queue, lane)) for lane in LANES])
    assert entries == n
