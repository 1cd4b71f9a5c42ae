"""`streamq inspect ...` against a live queue on real servers: the --json output is checked
against what the test made happen, and the tables show the same numbers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from cli_support import assert_one_line_error, cli

from streamq import App, Context, Fatal


def make_app(app_factory: Callable[..., App], queue: str) -> tuple[App, asyncio.Event]:
    app = app_factory()
    release = asyncio.Event()

    @app.task("ok", queue=queue)
    async def ok(ctx: Context, n: int) -> int:
        await ctx.progress(50, "half")
        return n * 2

    @app.task("boom", queue=queue, max_attempts=3)
    async def boom(ctx: Context, n: int) -> int:
        raise Fatal(f"BAD_INPUT: {n}")

    @app.task("hold", queue=queue, lease=30)
    async def hold(ctx: Context, n: int) -> int:
        await release.wait()
        return n

    return app, release


async def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_inspect_commands_show_a_live_queue(
    app_factory: Callable[..., App],
    run_worker: Any,
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("cli")
    app, release = make_app(app_factory, queue)
    url = ("--redis-url", redis_url)
    oks = [await app.enqueue("ok", i, id=f"ok-{i}") for i in range(3)]
    await app.enqueue("boom", 7, id="boom-1", priority="high")
    async with run_worker(app, concurrency=5) as worker:
        for h in oks:
            assert await h.result(timeout=10) in (0, 2, 4)
        await wait_for(lambda: _state(app, queue, "boom-1", "dead"))
        held = await app.enqueue("hold", 1, id="held-1", priority="low")
        await wait_for(lambda: _state(app, queue, "held-1", "active"))

        r = await cli(capsys, "inspect", "queues", "--json", *url)
        assert r.code == 0, r.err
        mine = [q for q in r.json() if q["queue"] == queue]
        assert len(mine) == 1
        q = mine[0]
        assert q["totals"]["completed"] == 3
        assert q["dead"] == 1
        assert q["lanes"]["low"] == {"depth": 0, "pending": 1}
        assert q["active"] == 1 and q["waiting"] == 0
        assert q["workers"] == 1
        assert q["paused"] is False
        # Rates are per second over the last minute: 3 completions, 1 dead letter.
        assert q["rates"]["completed"] == round(3 / 60, 3)
        assert q["rates"]["dead"] == round(1 / 60, 3)
        assert q["rates"]["queued"] == round(5 / 60, 3)

        r = await cli(capsys, *url, "inspect", "queue", queue, "--json")  # global option
        assert r.code == 0, r.err
        assert r.json()["totals"]["completed"] == 3 and r.json()["dead"] == 1

        r = await cli(capsys, "inspect", "lanes", queue, "--json", *url)
        lanes = {row["lane"]: row for row in r.json()}
        assert list(lanes) == ["critical", "high", "normal", "low", "bulk"]
        assert lanes["low"]["pending"] == 1 and lanes["low"]["waiting"] == 0
        assert lanes["low"]["lag"] in (0, None)

        r = await cli(capsys, "inspect", "groups", queue, "--json", *url)
        groups = r.json()
        low = [g for g in groups["groups"] if g["lane"] == "low"]
        assert low and low[0]["group"] == "workers" and low[0]["pending"] == 1
        owners = {c["name"]: c for c in low[0]["consumers"]}
        assert owners[worker.consumer]["pending"] == 1
        assert [w["name"] for w in groups["workers"]] == [worker.consumer]
        assert groups["workers"][0]["alive"] is True

        r = await cli(capsys, "inspect", "pending", queue, "--json", *url)
        (entry,) = r.json()
        assert entry["job"] == held.id and entry["name"] == "hold" and entry["lane"] == "low"
        assert entry["consumer"] == worker.consumer and entry["deliveries"] == 1
        assert entry["idle_s"] >= 0
        r = await cli(capsys, "inspect", "pending", queue, "--lane", "high", "--json", *url)
        assert r.json() == []

        r = await cli(capsys, "inspect", "pending", queue, *url)
        assert held.id in r.out and worker.consumer in r.out
        release.set()
        assert await held.result(timeout=10) == 1

    r = await cli(capsys, "inspect", "job", queue, "ok-1", "--json", *url)
    assert r.code == 0, r.err
    job = r.json()
    assert job["job"]["state"] == "completed" and job["job"]["result"] == 2
    types = [e["type"] for e in job["history"]]
    assert types[0] == "queued" and types[-1] == "completed"
    assert "active" in types and "progress" in types
    assert {e["job"] for e in job["history"]} == {"ok-1"}

    r = await cli(capsys, "inspect", "dead", queue, "--json", *url)
    dead = r.json()
    assert dead["total"] == 1
    (letter,) = dead["letters"]
    assert letter["job"] == "boom-1" and letter["name"] == "boom"
    assert "BAD_INPUT: 7" in letter["error"]

    # The tables carry the same facts.
    r = await cli(capsys, "inspect", "queues", *url)
    assert r.code == 0
    row = next(line for line in r.out.splitlines() if line.startswith(queue))
    assert "running" in row
    r = await cli(capsys, "inspect", "job", queue, "boom-1", *url)
    assert "dead" in r.out and "BAD_INPUT: 7" in r.out
    r = await cli(capsys, "inspect", "dead", queue, *url)
    assert "boom-1" in r.out and "(1 of 1)" in r.out


async def _state(app: App, queue: str, job_id: str, state: str) -> bool:
    job = await app.job(queue, job_id)
    return job is not None and job.state == state


async def test_bad_input_is_one_line_with_a_meaningful_exit_code(
    app_factory: Callable[..., App],
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("cli")
    app, _ = make_app(app_factory, queue)
    await app.enqueue("ok", 1, id="only")
    url = ("--redis-url", redis_url)

    r = await cli(capsys, "inspect", "queue", uniq("absent"), *url)
    assert r.code == 2
    assert_one_line_error(r)
    assert "unknown queue" in r.err and queue in r.err  # it names the known ones

    r = await cli(capsys, "inspect", "job", queue, "no-such-job", "--json", *url)
    assert r.code == 1 and r.out == ""
    assert_one_line_error(r)

    r = await cli(capsys, "inspect", "job", queue, "bad id!", *url)
    assert r.code == 2
    assert_one_line_error(r)

    r = await cli(capsys, "inspect", "pending", queue, "--lane", "urgent", *url)
    assert r.code == 2 and "unknown lane" in r.err

    r = await cli(capsys, "inspect", "queues", "--json", "--redis-url", "redis://127.0.0.1:1/0")
    assert r.code == 1
    assert_one_line_error(r)

    r = await cli(capsys, "inspect", "queues", "--redis-url", "http://nope")
    assert r.code == 1
    assert_one_line_error(r)

    r = await cli(capsys, "inspect", "frobnicate")
    assert r.code == 2
    assert_one_line_error(_as_streamq(r))


def _as_streamq(r: Any) -> Any:
    # argparse names the sub-command in its prefix ("streamq inspect: error: ...").
    r.err = r.err.replace("streamq inspect: error:", "streamq: error:")
    return r


async def test_rates_cover_the_sampled_span_when_busier_than_the_sample(
    app_factory: Callable[..., App],
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streamq import EnqueueRequest, _inspect

    queue = uniq("rate")
    app, _ = make_app(app_factory, queue)
    await app.enqueue_many([EnqueueRequest(name="ok", payload=i) for i in range(30)])
    r = await cli(capsys, "inspect", "queue", queue, "--json", "--redis-url", redis_url)
    assert r.json()["rates"]["queued"] == 0.5  # 30 in the last minute
    # With a sample smaller than the minute's events, the rate is over the sample's span:
    # 10 events written within a moment are far more than 10 per minute.
    monkeypatch.setattr(_inspect, "RATE_SAMPLE", 10)
    r = await cli(capsys, "inspect", "queue", queue, "--json", "--redis-url", redis_url)
    assert r.json()["rates"]["queued"] > 5


async def test_inspect_and_the_queue_route_report_the_same_figures(
    app_factory: Callable[..., App],
    run_worker: Any,
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`streamq inspect queue Q --json` and `GET /v1/queues/Q` read one read model: on a live
    queue (a worker running, jobs done, dead, delayed and in flight) they agree."""
    import httpx

    from server import ServerSettings, create_app, running_server

    queue = uniq("same")
    app, release = make_app(app_factory, queue)
    oks = [await app.enqueue("ok", i, id=f"ok-{i}") for i in range(4)]
    await app.enqueue("boom", 1, id="boom-1", priority="high")
    await app.enqueue("ok", 9, id="later-1", delay=600)
    settings = ServerSettings(rate_limit_per_second=0, stats_sample_seconds=0)
    async with (
        run_worker(app, concurrency=5),
        running_server(create_app(settings, app)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        for h in oks:
            await h.result(timeout=10)
        await wait_for(lambda: _state(app, queue, "boom-1", "dead"))
        held = await app.enqueue("hold", 1, id="held-1", priority="low")
        await wait_for(lambda: _state(app, queue, "held-1", "active"))

        r = await cli(capsys, "inspect", "queue", queue, "--json", "--redis-url", redis_url)
        assert r.code == 0, r.err
        shown = r.json()
        response = await client.get(f"/v1/queues/{queue}")
        assert response.status_code == 200, response.text
        served = response.json()
        release.set()
        assert await held.result(timeout=10) == 1

    # Non-trivial figures: done, dead, delayed, in flight, a live worker, rates over a minute.
    assert shown["totals"]["completed"] == 4 and shown["dead"] == 1
    assert shown["delayed"] == 1 and shown["active"] == 1 and shown["workers"] == 1
    assert shown["rates"]["completed"] == round(4 / 60, 3)
    assert shown["rates"]["dead"] == round(1 / 60, 3)
    # The same figures through the HTTP view.
    assert served["name"] == shown["queue"]
    assert served["counts"] == {k: shown[k] for k in ("waiting", "active", "delayed", "dead")}
    assert served["lanes"] == shown["lanes"]
    assert served["totals"] == shown["totals"]
    assert served["rates"] == shown["rates"]
    assert served["workers"] == shown["workers"]
    assert served["paused"] == shown["paused"]
