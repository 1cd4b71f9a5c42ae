"""The job index: each state's listing holds exactly that state's jobs, paging neither skips
nor repeats, filters (name, lane, time) apply, and entries leave with their records."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from streamq import App, Context, EnqueueRequest, InvalidJob, _keys
from streamq._scripts import Settlement
from streamq._types import LANES


async def _fetch(app: App, queue: str, count: int) -> list:
    reply = await app.scripts.fetch(
        queue, consumer="w", count=count, promote_limit=100, may_take_suspect=True, lanes=LANES
    )
    return reply.jobs


async def _listing(app: App, queue: str, page: int = 7, **filters: object) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        got = await app.list_jobs(queue, limit=page, cursor=cursor, **filters)  # type: ignore[arg-type]
        ids.extend(j.id for j in got.jobs)
        if got.next is None:
            return ids
        cursor = got.next


async def _spread(app: App, queue: str) -> dict[str, set[str]]:
    """Jobs in every state a script puts them in (flow parents aside): 5 of each."""

    @app.task("a", queue=queue)
    async def a(ctx: Context, x: int) -> int:
        return x

    @app.task("b", queue=queue)
    async def b(ctx: Context, x: int) -> int:
        return x

    want: dict[str, set[str]] = {}
    reqs = [
        EnqueueRequest(name="a" if i % 2 else "b", payload=i, id=f"j{i:03d}") for i in range(35)
    ]
    await app.enqueue_many(reqs[:30])
    await app.enqueue_many(
        [EnqueueRequest(name="a", payload=i, id=f"s{i}", delay=600) for i in range(5)]
    )
    want["scheduled"] = {f"s{i}" for i in range(5)}
    jobs = await _fetch(app, queue, 25)
    by_id = {j.job_id: j for j in jobs}
    outcomes = {"completed": 0, "retrying": 5, "dead": 10, "cancelled": 15}
    settle = []
    for state, first in outcomes.items():
        ids = [f"j{i:03d}" for i in range(first, first + 5)]
        want[state] = set(ids)
        for job_id in ids:
            j = by_id[job_id]
            outcome = {"completed": "completed", "retrying": "retry", "dead": "dead"}.get(
                state, "cancelled"
            )
            settle.append(
                Settlement(
                    outcome,  # type: ignore[arg-type]
                    job_id,
                    j.lane,
                    j.entry_id,
                    j.fence,
                    data=b"x",
                    ttl_ms=600_000,
                    delay_ms=600_000,
                    reason="fatal",
                )
            )
    await app.scripts.settle(queue, settle)
    want["active"] = {f"j{i:03d}" for i in range(20, 25)}
    want["queued"] = {f"j{i:03d}" for i in range(25, 30)}
    return want


async def test_each_state_lists_exactly_its_jobs(app_factory, queue) -> None:
    app = app_factory()
    want = await _spread(app, queue)
    for state, ids in want.items():
        listed = await _listing(app, queue, state=state)
        assert len(listed) == len(set(listed))
        assert set(listed) == ids, state
    everything = await _listing(app, queue, page=4)
    assert len(everything) == len(set(everything)) == 35
    assert set(everything) == set().union(*want.values())
    named = await _listing(app, queue, name="a")
    assert set(named) == {f"j{i:03d}" for i in range(1, 30, 2)} | want["scheduled"]
    done_a = await _listing(app, queue, state="completed", name="a")
    assert set(done_a) == {"j001", "j003"}
    assert await _listing(app, queue, state="completed", lane="high") == []
    assert len(await _listing(app, queue, state="queued", lane="normal")) == 5


async def test_newest_first_and_time_bounds(app_factory, queue) -> None:
    app = app_factory()

    @app.task("a", queue=queue)
    async def a(ctx: Context, x: int) -> int:
        return x

    await app.enqueue("a", 1, id="old")
    await asyncio.sleep(0.02)
    middle = time.time()
    await asyncio.sleep(0.02)
    await app.enqueue("a", 2, id="new")
    assert [j.id async for j in app.jobs(queue, state="queued")] == ["new", "old"]
    assert await _listing(app, queue, state="queued", since=middle) == ["new"]
    assert await _listing(app, queue, state="queued", until=middle) == ["old"]


async def test_bad_filters_and_cursors_are_refused(app_factory, queue) -> None:
    app = app_factory()
    with pytest.raises(InvalidJob, match="unknown state"):
        await app.list_jobs(queue, state="done")
    with pytest.raises(InvalidJob, match="unknown lane"):
        await app.list_jobs(queue, lane="urgent")
    with pytest.raises(InvalidJob, match="cursor"):
        await app.list_jobs(queue, cursor="nonsense")
    with pytest.raises(InvalidJob, match="limit"):
        await app.list_jobs(queue, limit=0)


async def test_paging_while_jobs_change_state(app_factory, queue, run_worker) -> None:
    """Pages of a state's listing taken while workers move jobs: no id twice; every job that
    stayed in the state throughout is listed; every job listed was in that state."""
    app = app_factory()
    gate = asyncio.Event()

    @app.task("slow", queue=queue)
    async def slow(ctx: Context, x: int) -> int:
        await gate.wait()
        return x

    await app.enqueue_many([EnqueueRequest(name="slow", payload=i, id=f"j{i}") for i in range(600)])
    async with run_worker(app, concurrency=50):
        listed: list[str] = []
        cursor = None
        while True:
            page = await app.list_jobs(queue, state="queued", limit=20, cursor=cursor)
            listed.extend(j.id for j in page.jobs)
            if page.next is None:
                break
            cursor = page.next
            await asyncio.sleep(0.005)
        gate.set()
    assert len(listed) == len(set(listed))
    # The worker took at most its concurrency (and a fetch batch) out of the queue: the rest
    # never moved and must all be there.
    assert len(listed) >= 600 - 150


async def test_entries_leave_with_their_records(app_factory, queue, redis_url) -> None:
    app = app_factory(keep_last=10)

    @app.task("a", queue=queue)
    async def a(ctx: Context, x: int) -> int:
        return x

    @app.task("b", queue=queue)
    async def b(ctx: Context, x: int) -> int:
        return x

    async def run_through(name: str, n: int, start: int, ttl_ms: int) -> None:
        await app.enqueue_many(
            [EnqueueRequest(name=name, payload=i, id=f"j{i:03d}") for i in range(start, start + n)]
        )
        jobs = await _fetch(app, queue, n)
        await app.scripts.settle(
            queue,
            [
                Settlement("completed", j.job_id, j.lane, j.entry_id, j.fence, ttl_ms=ttl_ms)
                for j in jobs
            ],
        )

    r = aioredis.Redis.from_url(redis_url)
    a_key, b_key = _keys.index(queue, "completed", "a"), _keys.index(queue, "completed", "b")
    try:
        # keep_last trims records and their entries at once.
        await run_through("a", 50, 0, 600_000)
        assert await r.zcard(a_key) == 10
        newest_a = [f"j{i:03d}" for i in range(49, 39, -1)]
        assert await _listing(app, queue, state="completed") == newest_a
        # Records that expire by age: finishing jobs drops expired entries (up to 64 a call).
        app.keep_last = 0
        await run_through("b", 30, 100, 300)
        await asyncio.sleep(0.35)
        await run_through("b", 20, 200, 300)
        assert await r.zcard(b_key) == 20
        # A listing never shows a job whose record is gone, and drops the entries it meets.
        await run_through("a", 5, 300, 1)
        await asyncio.sleep(0.01)
        listed = await _listing(app, queue, state="completed", name="a")
        assert listed == newest_a
        assert await r.zcard(a_key) == 10
    finally:
        await r.aclose()


async def test_listing_pages_past_a_crowded_millisecond(app_factory, queue) -> None:
    """More entries in one ms than a call examines, none of them matching: the listing still
    moves on to the older ones (a cursor at that ms must not be handed out again)."""
    app = app_factory()

    @app.task("a", queue=queue)
    async def a(ctx: Context, x: int) -> int:
        return x

    @app.task("b", queue=queue)
    async def b(ctx: Context, x: int) -> int:
        return x

    await app.enqueue_many([EnqueueRequest(name="b", payload=i, id=f"old{i}") for i in range(5)])
    await asyncio.sleep(0.01)
    await app.enqueue_many(
        [EnqueueRequest(name="a", payload=i, id=f"new{i:03d}") for i in range(300)]
    )
    listed = await asyncio.wait_for(_listing(app, queue, page=10, state="queued", name="b"), 10)
    assert sorted(listed) == [f"old{i}" for i in range(5)]
