"""Recurring jobs: tick arithmetic, code and stored schedules, overlap guard, catch-up, and
several scheduler processes firing each tick once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from streamq import App, ConfigurationError, Context, Scheduler, UnknownJob, _keys, job_id
from streamq._schedule import Schedule
from tests.streamq.procs import ROOT


def make_app(app_factory: Callable[..., App], queue: str, runs: list[str]) -> App:
    app = app_factory()

    @app.task("tick", queue=queue)
    async def tick(ctx: Context, _: None) -> None:
        runs.append(ctx.job_id)

    return app


async def until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if check() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.02)


def test_every_ticks_are_aligned_and_capped() -> None:
    s = Schedule(id="s", name="tick", queue="q", every=10.0)
    assert s.ticks(0, 35_000, 5) == [10_000, 20_000, 30_000]
    assert s.ticks(0, 35_000, 1) == [30_000]
    assert s.ticks(30_000, 35_000, 1) == []
    assert s.next_after(30_000) == 40_000 and s.next_after(31_000) == 40_000


def test_cron_ticks_follow_the_time_zone() -> None:
    s = Schedule(id="s", name="tick", queue="q", cron="0 9 * * *", tz="Europe/Paris")
    paris = ZoneInfo("Europe/Paris")
    now = int(datetime(2026, 1, 15, 12, 0, tzinfo=paris).timestamp() * 1000)
    nine = int(datetime(2026, 1, 15, 9, 0, tzinfo=paris).timestamp() * 1000)
    day = 86_400_000
    assert s.ticks(nine - 3 * day + 1, now, 5) == [nine - 2 * day, nine - day, nine]
    assert s.ticks(nine, now, 5) == []
    # In winter 09:00 in Paris is 08:00 UTC.
    assert datetime.fromtimestamp(nine / 1000, ZoneInfo("UTC")).hour == 8
    assert s.next_after(nine) == nine + day


async def test_bad_schedules_are_refused(app_factory, queue) -> None:
    app = make_app(app_factory, queue, [])
    with pytest.raises(ConfigurationError, match="exactly one"):
        app.schedule("tick")
    with pytest.raises(ConfigurationError, match="exactly one"):
        app.schedule("tick", cron="* * * * *", every=5)
    with pytest.raises(ConfigurationError, match="cron"):
        app.schedule("tick", cron="every day")
    with pytest.raises(ConfigurationError, match="time zone"):
        app.schedule("tick", cron="* * * * *", tz="Mars/Olympus")
    with pytest.raises(ConfigurationError):
        app.schedule("tick", every=0)
    with pytest.raises(UnknownJob):
        app.schedule("tock", every=5)


async def test_code_schedule_runs_in_a_worker(app_factory, queue, run_worker) -> None:
    runs: list[str] = []
    app = make_app(app_factory, queue, runs)
    s = app.schedule("tick", every=0.5, id="half-second")
    assert [x.id for x in await app.schedules(queue)] == ["half-second"]
    async with run_worker(app):
        await asyncio.sleep(2.6)
    # The first sight of a schedule fires nothing (like cron); then one run per tick.
    assert 4 <= len(runs) <= 6, runs
    assert len(set(runs)) == len(runs)
    assert all(r.startswith("tick-") for r in runs)
    assert s.every == 0.5


async def test_stored_schedule_is_listed_run_and_removed(app_factory, queue, run_worker) -> None:
    runs: list[str] = []
    app = make_app(app_factory, queue, runs)
    await app.add_schedule("tick", every=0.3, id="stored")
    (listed,) = await app.schedules(queue)
    assert listed.id == "stored" and listed.stored and listed.every == 0.3
    # The worker sees a stored schedule on its queue and starts a scheduler for it.
    async with run_worker(app):
        await until(lambda: len(runs) >= 3, 5)
        assert len(runs) >= 3
        assert await app.remove_schedule(queue, "stored") is True
        await asyncio.sleep(1.2)  # a pass in flight may still fire once
        count = len(runs)
        await asyncio.sleep(1.0)
        assert len(runs) == count
    assert await app.schedules(queue) == []
    assert await app.remove_schedule(queue, "stored") is False


async def test_overlap_false_skips_ticks_while_the_last_run_is_active(
    app_factory, queue, run_worker
) -> None:
    app = app_factory()
    active = 0
    most = 0
    runs = 0

    @app.task("slow", queue=queue)
    async def slow(ctx: Context, _: None) -> None:
        nonlocal active, most, runs
        active += 1
        runs += 1
        most = max(most, active)
        await asyncio.sleep(1.0)
        active -= 1

    app.schedule("slow", every=0.2, overlap=False)
    async with run_worker(app, concurrency=10):
        await asyncio.sleep(3.0)
    assert most == 1
    # Ticks every 0.2 s, but a run takes a second: about three runs, not fifteen.
    assert 2 <= runs <= 4


async def test_a_scheduler_back_from_downtime_catches_up_at_most_catch_up_ticks(
    app_factory, queue
) -> None:
    app = make_app(app_factory, queue, [])
    one = app.schedule("tick", every=1.0, id="one")
    three = app.schedule("tick", every=1.0, id="three", catch_up=3)
    await app.connect()
    # As if the scheduler had been down for the last 20 ticks.
    down_since = int(time.time() * 1000) // 1000 * 1000 - 20_000
    await app.redis.hset(
        _keys.custom(queue, "schedules", "last"), mapping={"one": down_since, "three": down_since}
    )
    scheduler = Scheduler(app, [queue])
    await scheduler.run_once()
    stats = await app.stats(queue)
    assert stats.totals["enqueued"] == 1 + 3
    newest = int(time.time() * 1000) // 1000 * 1000
    ids = {job_id("tick", s.id, t) for s, t in [(one, newest), (three, newest)]}
    for jid in ids:
        assert await app.job(queue, jid) is not None
    # A second pass right away has nothing left to fire.
    await scheduler.run_once()
    assert (await app.stats(queue)).totals["enqueued"] == 4


async def test_three_scheduler_processes_fire_each_tick_once(
    app_factory, uniq, redis_url: str, valkey_url: str, run_worker
) -> None:
    if redis_url != valkey_url:
        pytest.skip("the multi-process run is on the embedded Valkey only")
    queue = uniq("sched")
    runs: list[str] = []
    app = make_app(app_factory, queue, runs)
    await app.connect()
    env = dict(
        os.environ,
        STREAMQ_REDIS_URL=redis_url,
        ORCH_QUEUE=queue,
        ORCH_QUEUE_B=uniq("b"),
        ORCH_EVERY="1",
    )
    code = (
        "import asyncio\n"
        "from tests.streamq.orch_app import app\n"
        "from streamq._schedule import run_scheduler\n"
        "asyncio.run(run_scheduler(app))\n"
    )
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", code, cwd=ROOT, env=env)
        for _ in range(3)
    ]
    last = _keys.custom(queue, "schedules", "last")
    try:
        # The tick jobs run in this process (its worker runs no scheduler of its own).
        async with run_worker(app, scheduler=False):
            deadline = time.monotonic() + 30
            while not await app.redis.hexists(last, "every-tick"):
                assert time.monotonic() < deadline, "no scheduler started"
                await asyncio.sleep(0.05)
            await asyncio.sleep(10.0)
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            # All three were running until told to stop (a clean exit on SIGTERM).
            assert [await asyncio.wait_for(p.wait(), 10) for p in procs] == [0, 0, 0]
            await asyncio.sleep(0.5)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    print(f"3 scheduler processes, every=1s for 10 s: {len(runs)} runs")
    assert 9 <= len(runs) <= 11, runs
    assert len(set(runs)) == len(runs)
    assert (await app.stats(queue)).totals["enqueued"] == len(runs)
