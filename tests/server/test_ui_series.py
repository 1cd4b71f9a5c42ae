"""Wait and run times per interval (``GET /v1/series``), derived from the queues' events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

import streamq
from server import ServerSettings, create_app, running_server
from server.ui.live import Durations, SeriesTracker


def _event(job: str, kind: str, at: float) -> streamq.Event:
    return streamq.Event(id=f"{int(at * 1000)}-0", queue="q", type=kind, job=job, at=at)


def test_durations_time_each_job_from_ready_to_started_to_finished() -> None:
    durations = Durations()
    base = 1_800_000_000.0  # a minute boundary: every event below falls in one minute
    events = []
    for i in range(20):
        job = f"j{i}"
        # Waits of 1..20 s; runs of 2 s, except one of 30 s (the 95th percentile).
        events += [
            _event(job, "queued", base),
            _event(job, "active", base + 1 + i),
            _event(job, "completed", base + 3 + i + (28 if i == 7 else 0)),
        ]
    events.sort(key=lambda e: e.at)
    durations.observe("q", events)
    minute = int(base // 60)
    out = durations.series(["q"], minute, 1, 1)
    wait50, wait95, run50, run95 = (
        out[k][0] for k in ("wait_p50", "wait_p95", "run_p50", "run_p95")
    )
    assert wait50 is not None and 10 * 0.91 <= wait50 <= 10 * 1.1
    assert wait95 is not None and 19 * 0.91 <= wait95 <= 19 * 1.1
    assert run50 is not None and 2 * 0.91 <= run50 <= 2 * 1.1
    assert run95 is not None and 2 * 0.91 <= run95 <= 2 * 1.1  # one job of twenty is 5 %
    # Nothing measured in the next minute: null, not zero.
    assert durations.series(["q"], minute + 1, 1, 1)["run_p50"] == [None]


def test_a_retried_job_is_timed_per_attempt_and_lost_runs_are_not_timed() -> None:
    durations = Durations()
    base = 1_800_000_000.0
    durations.observe(
        "q",
        [
            _event("a", "queued", base),
            _event("a", "active", base + 1),
            _event("a", "retrying", base + 5),  # a failed run is a run: 4 s
            _event("a", "queued", base + 8),  # due again
            _event("a", "active", base + 9),  # waited 1 s again
            _event("a", "completed", base + 13),  # 4 s
            _event("b", "queued", base),
            _event("b", "active", base + 1),
            _event("b", "reclaimed", base + 40),  # its worker died: no run time
            _event("b", "queued", base + 40),
        ],
    )
    out = durations.series(["q"], int(base // 60), 1, 1)
    assert out["run_p95"][0] is not None and 4 * 0.91 <= out["run_p95"][0] <= 4 * 1.1
    assert out["wait_p95"][0] is not None and 0.91 <= out["wait_p95"][0] <= 1.1
    assert list(durations.ready["q"]) == ["b"] and not durations.started["q"]


def test_at_most_max_tracked_jobs_are_remembered_and_the_oldest_stay() -> None:
    durations = Durations(max_tracked=3)
    base = 1_800_000_000.0
    durations.observe("q", [_event(f"j{i}", "queued", base + i) for i in range(5)])
    assert list(durations.ready["q"]) == ["j0", "j1", "j2"]
    durations.observe("q", [_event("j0", "active", base + 10), _event("j3", "queued", base + 11)])
    assert list(durations.ready["q"]) == ["j1", "j2", "j3"]


def test_quarter_hours_merge_their_minutes() -> None:
    durations = Durations()
    base = 1_800_000_000.0 - 1_800_000_000.0 % 900  # a quarter-hour boundary
    events = []
    for minute in range(15):  # one 1 s run per minute, and one 100 s run in the last minute
        start = base + minute * 60
        events += [
            _event(f"m{minute}", "active", start),
            _event(f"m{minute}", "completed", start + 1),
        ]
    events += [_event("long", "active", base + 800), _event("long", "completed", base + 890)]
    durations.observe("q", events)
    out = durations.series(["q"], int(base // 60), 15, 1)
    assert out["run_p50"][0] is not None and 0.91 <= out["run_p50"][0] <= 1.1
    assert out["run_p95"][0] is not None and 90 * 0.91 <= out["run_p95"][0] <= 90 * 1.1


async def test_the_series_route_reports_waits_and_runs_of_jobs_run_by_a_worker(
    app_factory: Callable[..., streamq.App], uniq: Callable[[str], str]
) -> None:
    app = app_factory()
    queue = uniq("times")

    @app.task("nap", queue=queue)
    async def nap(ctx: streamq.Context, seconds: float) -> None:
        await asyncio.sleep(seconds)

    await app.register_queue(queue)
    settings = ServerSettings(rate_limit_per_second=0, stats_sample_seconds=0)
    starlette = create_app(settings, app)
    tracker = starlette.state.streamq.rates
    assert isinstance(tracker, SeriesTracker)
    async with (
        running_server(starlette) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        # The server follows its app's queues from the first time it samples their totals
        # (here: whenever the overview reads them, at most once a second).
        assert (await client.get("/ui/")).status_code == 200
        first = await app.enqueue("nap", 0.0, queue=queue)
        for _ in range(100):
            if queue in tracker.durations.subscriptions:
                break
            assert (await client.get("/ui/")).status_code == 200
            await asyncio.sleep(0.2)
        assert queue in tracker.durations.subscriptions
        handles = [first] + [await app.enqueue("nap", 0.3, queue=queue) for _ in range(4)]
        worker = streamq.Worker(app, [queue], concurrency=1, handle_signals=False)
        running = asyncio.create_task(worker.run())
        try:
            for h in handles:
                await h.result(timeout=30)
        finally:
            worker.stop()
            await asyncio.wait_for(running, 30)

        async def hour() -> dict[str, list[float | None]]:
            body = (await client.get("/v1/series", params={"queue": queue})).json()
            assert set(body["queues"]) == {queue}
            series: dict[str, list[float | None]] = body["queues"][queue]["hour"]
            return series

        for _ in range(200):  # the feed hands the last events over within a moment
            series = await hour()
            if sum(1 for v in series["run_p50"] if v is not None) and series["wait_p95"][-1]:
                break
            await asyncio.sleep(0.05)
        runs = [v for v in series["run_p95"] if v is not None]
        waits = [v for v in series["wait_p95"] if v is not None]
        # Four 0.3 s naps one after another: each runs 0.3 s or more, the last waited 0.9 s.
        assert runs and all(v >= 0.3 * 0.91 for v in runs)
        assert waits and max(waits) >= 0.9 * 0.91
        everything = (await client.get("/v1/series")).json()["all"]["hour"]
        assert any(v is not None for v in everything["run_p50"])
        document = (await client.get("/openapi.json")).json()
        fields = document["components"]["schemas"]["Series"]["properties"]
        assert {"wait_p50", "wait_p95", "run_p50", "run_p95"} <= set(fields)
    assert tracker.durations.closed and not tracker.durations.subscriptions


async def test_only_active_queues_are_followed_and_only_so_many(
    app_factory: Callable[..., streamq.App], uniq: Callable[[str], str]
) -> None:
    app = app_factory()
    await app.connect()
    busy, other = uniq("busy"), uniq("other")
    durations = Durations(max_queues=1, quiet_seconds=3600)
    durations.follow(app, busy, active=False)  # nothing moved: not followed
    assert not durations.subscriptions and not durations._pending
    durations.follow(app, busy, active=True)
    durations.follow(app, other, active=True)  # one queue at most
    for _ in range(200):
        if busy in durations.subscriptions:
            break
        await asyncio.sleep(0.05)
    assert list(durations.subscriptions) == [busy]
    durations.quiet_seconds = 0.0  # quiet for longer than that: no longer followed
    await asyncio.sleep(0.01)
    durations.follow(app, other, active=False)
    assert not durations.subscriptions
    durations.close()
