"""Crashes: workers SIGKILLed mid-run, a frozen (zombie) worker, a poison job. Nothing that was
acknowledged is lost, nothing completes twice, and a job whose lease was taken cannot be
finished by its old worker."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter

import pytest

from streamq import App, EnqueueRequest, _keys
from tests.streamq.procs import spawn_worker, stop

pytestmark = pytest.mark.slow


def _app(app_factory, queue: str, **task_options) -> App:
    """A producer-side app with the same task signature as crash_app."""
    app = app_factory(events_maxlen=200_000)

    @app.task("work", queue=queue, **task_options)
    async def work(ctx, tag: str) -> str:  # runs only in the subprocesses
        raise AssertionError

    return app


async def _completed_events(app: App, queue: str) -> Counter[str]:
    """Completed events per job, read page by page over the whole events stream."""
    counts: Counter[str] = Counter()
    key = _keys.events(queue)
    start, seen = "-", 0
    while page := await app.redis.xrange(key, min=start, count=5000):
        seen += len(page)
        for _, fields in page:
            if fields[b"t"] == b"completed":
                counts[fields[b"j"].decode()] += 1
        start = "(" + page[-1][0].decode()
    assert seen == await app.redis.xlen(key)  # nothing trimmed: every event was read
    return counts


async def test_ten_thousand_jobs_survive_five_worker_kills(app_factory, redis_url, queue) -> None:
    app = _app(app_factory, queue, lease=1.0)
    n = 10_000
    ids = [f"job-{i}" for i in range(n)]
    for start in range(0, n, 1000):
        await app.enqueue_many(
            [EnqueueRequest(name="work", payload="x", id=i) for i in ids[start : start + 1000]]
        )
    workers = [spawn_worker(redis_url, queue, name=f"w{i}") for i in range(3)]
    kills = 0
    try:
        rng = random.Random(7)
        while kills < 5:
            await asyncio.sleep(rng.uniform(0.3, 0.9))
            victim = rng.randrange(3)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills += 1
            workers[victim] = spawn_worker(redis_url, queue, name=f"w{victim}-{kills}")
        deadline = time.monotonic() + 120
        while (await app.stats(queue)).totals.get("completed", 0) < n:
            assert time.monotonic() < deadline, await app.stats(queue)
            await asyncio.sleep(0.2)
    finally:
        for w in workers:
            stop(w)
    stats = await app.stats(queue)
    states = Counter([(await app.job(queue, i)).state for i in ids])  # type: ignore[union-attr]
    completions = await _completed_events(app, queue)
    runs = await app.redis.hgetall(_keys.custom(queue, "test-runs"))
    total_runs = sum(int(v) for v in runs.values())
    print(
        f"\n{n} jobs, 5 worker kills: {total_runs} handler runs, "
        f"{total_runs - n} repeats after reclaim, reclaimed={stats.totals.get('reclaimed', 0)}"
    )
    assert states == Counter({"completed": n})
    assert stats.totals["completed"] == n
    assert len(completions) == n and set(completions.values()) == {1}
    assert len(runs) == n and total_runs >= n


async def test_zombie_worker_cannot_overwrite_the_reclaimers_result(
    app_factory, redis_url, queue
) -> None:
    app = _app(app_factory, queue, lease=1.0)
    zombie = spawn_worker(redis_url, queue, name="zombie", env={"CRASH_LEASE": "1.0"})
    rescuer = None
    try:
        h = await app.enqueue("work", "zombie", id="z-1")
        deadline = time.monotonic() + 20
        while (job := await h.info()) is None or job.state != "active":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        zombie.send_signal(signal.SIGSTOP)  # frozen mid-handler, lease keeps running out
        rescuer = spawn_worker(redis_url, queue, name="rescuer")
        assert await h.result(timeout=30) == "rescuer"
        zombie.send_signal(signal.SIGCONT)  # its handler now finishes and tries to complete
        await asyncio.sleep(4.0)
        job = await h.info()
        assert job is not None
        assert (job.state, job.result, job.deliveries) == ("completed", "rescuer", 2)
        assert (await _completed_events(app, queue))["z-1"] == 1
    finally:
        stop(zombie)
        if rescuer:
            stop(rescuer)


async def test_poison_job_is_dead_lettered_after_max_deliveries(
    app_factory, redis_url, queue
) -> None:
    app = _app(app_factory, queue, lease=0.5, max_deliveries=3)
    env = {"CRASH_LEASE": "0.5", "CRASH_MAXDEL": "3"}
    poison = await app.enqueue("work", "poison", id="poison-1")
    healthy = [await app.enqueue("work", "ok", id=f"ok-{i}") for i in range(200)]
    workers = [
        spawn_worker(redis_url, queue, name=f"p{i}", env=env, concurrency=5) for i in range(2)
    ]
    respawns = 0
    try:
        deadline = time.monotonic() + 60
        while await poison.state() != "dead":
            assert time.monotonic() < deadline, await poison.info()
            for i, w in enumerate(workers):
                if w.poll() is not None:  # the poison killed it: a supervisor restarts it
                    respawns += 1
                    workers[i] = spawn_worker(
                        redis_url, queue, name=f"p{i}", env=env, concurrency=5
                    )
            await asyncio.sleep(0.1)
        results = [await h.result(timeout=30) for h in healthy]
    finally:
        for w in workers:
            stop(w)
    job = await poison.info()
    [dead] = [d for d in await app.dead_letters(queue) if d.job == "poison-1"]
    runs = int(await app.redis.hget(_keys.custom(queue, "test-runs"), "poison-1"))
    print(f"\npoison job: {runs} deliveries, {respawns} worker restarts; reason: {dead.error}")
    assert job is not None and job.state == "dead" and job.deliveries == 3
    assert dead.reason == "max_deliveries" and "max_deliveries 3" in dead.error
    assert runs == 3
    assert len(results) == 200 and set(results) <= {"p0", "p1"}  # all healthy jobs completed


async def test_a_reclaimed_job_runs_before_the_backlog_moves_on(
    app_factory, redis_url, queue
) -> None:
    """Quarantine with a bounded wait: a job taken back from a SIGKILLed worker starts before
    500 more of a 5,000-job backlog start (counted on the events stream, not timed)."""
    app = _app(app_factory, queue, lease=1.0)
    n = 5_000
    for start in range(0, n, 1000):
        await app.enqueue_many(
            [
                EnqueueRequest(name="work", payload="x", id=f"b-{i}")
                for i in range(start, start + 1000)
            ]
        )
    env = {"CRASH_WORK": "0.02"}
    workers = [spawn_worker(redis_url, queue, name=f"w{i}", env=env) for i in range(2)]
    try:
        deadline = time.monotonic() + 30
        while (await app.stats(queue)).totals.get("completed", 0) < 300:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        deadline = time.monotonic() + 120
        while (await app.stats(queue)).totals.get("completed", 0) < n:
            assert time.monotonic() < deadline, await app.stats(queue)
            await asyncio.sleep(0.2)
    finally:
        for w in workers:
            stop(w)
    # Walk the events: after each job's "reclaimed", how many other jobs started before it did.
    waiting: dict[str, int] = {}
    started_after: dict[str, int] = {}
    start = "-"
    while page := await app.redis.xrange(_keys.events(queue), min=start, count=5000):
        for _, f in page:
            kind, job = f[b"t"], f[b"j"].decode()
            if kind == b"reclaimed":
                waiting[job] = 0
            elif kind == b"active":
                if job in waiting:
                    started_after[job] = waiting.pop(job)
                for other in waiting:
                    waiting[other] += 1
        start = "(" + page[-1][0].decode()
    print(
        f"\nreclaimed jobs, other jobs started before each re-ran: {sorted(started_after.values())}"
    )
    assert started_after and not waiting
    assert max(started_after.values()) < 500
    assert (await app.stats(queue)).totals["completed"] == n


async def test_a_handler_blocking_its_loop_keeps_its_lease(app_factory, redis_url, queue) -> None:
    """An async handler blocks its worker's loop for 5 x its lease while another worker stands
    ready to reclaim: it runs once, completes once, is never reclaimed; its neighbours on the
    blocked worker run once too."""
    app = _app(app_factory, queue, lease=0.5)
    env = {"CRASH_LEASE": "0.5", "CRASH_BLOCK": "2.5", "CRASH_WORK": "0.05"}
    ids = ["blocker", *(f"n-{i}" for i in range(5))]
    await app.enqueue_many(
        [EnqueueRequest(name="work", payload="block" if i == "blocker" else "x", id=i) for i in ids]
    )
    blocked = spawn_worker(redis_url, queue, name="blocked", env=env)
    other = None
    try:
        deadline = time.monotonic() + 20
        while not await app.redis.hget(_keys.custom(queue, "test-runs"), "blocker"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        other = spawn_worker(redis_url, queue, name="other", env=env)
        deadline = time.monotonic() + 30
        while (await app.stats(queue)).totals.get("completed", 0) < len(ids):
            assert time.monotonic() < deadline, await app.stats(queue)
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # time for a wrong reclaim or a second run to show
    finally:
        stop(blocked)
        if other:
            stop(other)
    runs = await app.redis.hgetall(_keys.custom(queue, "test-runs"))
    assert {k.decode(): int(v) for k, v in runs.items()} == dict.fromkeys(ids, 1)
    for i in ids:
        job = await app.job(queue, i)
        assert job is not None and (job.state, job.deliveries) == ("completed", 1), job
    assert set((await _completed_events(app, queue)).items()) == {(i, 1) for i in ids}
    assert "reclaimed" not in (await app.stats(queue)).totals
