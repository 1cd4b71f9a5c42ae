"""Operating a queue from the command line: dead replay/purge, pause/resume, enqueue, tail."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from cli_support import assert_one_line_error, cli, spawn

from streamq import App, Context, Fatal


async def _dead_letters(app: App, queue: str, n: int) -> None:
    deadline = asyncio.get_running_loop().time() + 20
    while (await app.stats(queue)).dead < n:
        assert asyncio.get_running_loop().time() < deadline, "dead letters did not appear"
        await asyncio.sleep(0.05)


async def test_dead_replay_and_purge(
    app_factory: Callable[..., App],
    run_worker: Any,
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("dead")
    app = app_factory()
    healed: set[int] = set()

    @app.task("flaky", queue=queue)
    async def flaky(ctx: Context, n: int) -> int:
        if n not in healed:
            raise Fatal(f"NOT_YET: {n}")
        return n

    url = ("--redis-url", redis_url)
    total = 650  # more than one chunk of 500
    await app.enqueue_many([_request("flaky", i, f"f-{i}") for i in range(total)])
    async with run_worker(app, concurrency=100):
        await _dead_letters(app, queue, total)
        healed.update(range(total))

        r = await cli(capsys, "dead", "replay", queue, "f-3", "f-4", "nope", "--json", *url)
        assert r.code == 1  # one id matched no dead letter; the others were replayed
        assert r.json() == {
            "queue": queue,
            "action": "replay",
            "matched": 2,
            "done": 2,
            "missing": ["nope"],
        }
        for i in (3, 4):
            assert await app.handle(queue, f"f-{i}").result(timeout=10) == i

        # An entry id works as well as a job id.
        letters = await app.dead_letters(queue, count=1)
        r = await cli(capsys, "dead", "replay", queue, letters[0].id, *url)
        assert r.code == 0, r.err
        assert "replayed 1 of 1" in r.out
        assert await app.handle(queue, letters[0].job).result(timeout=10) is not None

        r = await cli(capsys, "dead", "replay", queue, "--all", "--json", *url)
        assert r.code == 0, r.err
        assert r.json()["done"] == total - 3 and r.json()["matched"] == total - 3
        deadline = asyncio.get_running_loop().time() + 30
        while (await app.stats(queue)).totals.get("completed", 0) < total:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
    assert (await app.stats(queue)).dead == 0

    # Purge: new dead letters, removed with their job records.
    healed.clear()
    await app.enqueue_many([_request("flaky", i, f"p-{i}") for i in range(5)])
    async with run_worker(app, concurrency=5):
        await _dead_letters(app, queue, 5)
    r = await cli(capsys, "dead", "purge", queue, "p-0", "--json", *url)
    assert r.code == 0 and r.json()["done"] == 1
    assert await app.job(queue, "p-0") is None
    r = await cli(capsys, "dead", "purge", queue, "--all", "--json", *url)
    assert r.json()["done"] == 4
    assert (await app.stats(queue)).dead == 0

    r = await cli(capsys, "dead", "purge", queue, "p-1", "--all", *url)
    assert r.code == 2
    assert_one_line_error(r)
    r = await cli(capsys, "dead", "replay", queue, *url)
    assert r.code == 2


def _request(name: str, payload: Any, job: str) -> Any:
    from streamq import EnqueueRequest

    return EnqueueRequest(name=name, payload=payload, id=job)


async def test_pause_and_resume(
    app_factory: Callable[..., App],
    run_worker: Any,
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("pause")
    app = app_factory()

    @app.task("job", queue=queue)
    async def job(ctx: Context, n: int) -> int:
        return n

    url = ("--redis-url", redis_url)
    await app.register_queue(queue)
    r = await cli(capsys, "pause", queue, "--json", *url)
    assert r.code == 0 and r.json() == {"queue": queue, "paused": True}
    r = await cli(capsys, "inspect", "queue", queue, "--json", *url)
    assert r.json()["paused"] is True
    async with run_worker(app, concurrency=2):
        h = await app.enqueue("job", 5)
        await asyncio.sleep(1.0)
        assert await h.state() == "queued"  # paused: not taken
        r = await cli(capsys, "resume", queue, *url)
        assert r.code == 0 and "resumed" in r.out
        assert await h.result(timeout=10) == 5
    events = [e.type for e in await app.read_events(queue, count=1000)]
    assert "paused" in events and "resumed" in events
    r = await cli(capsys, "pause", uniq("never-used"), *url)
    assert r.code == 2
    assert_one_line_error(r)


async def test_enqueue_prints_the_job_and_deduplicates(
    tmp_path: Path,
    app_factory: Callable[..., App],
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("enq")
    app = app_factory()
    args = ("enqueue", queue, "mail", "--payload", '{"to": "a@b"}', "--id", "m-1")
    r = await cli(capsys, *args, "--priority", "high", "--redis-url", redis_url)
    assert r.code == 0, r.err
    assert r.json() == {"id": "m-1", "queue": queue, "state": "queued", "deduplicated": False}
    r = await cli(capsys, *args, "--redis-url", redis_url)
    assert r.json()["deduplicated"] is True
    job = await app.job(queue, "m-1")
    assert job is not None and job.payload == {"to": "a@b"} and job.priority == "high"
    r = await cli(capsys, "enqueue", queue, "mail", "--payload", "{nope", "--redis-url", redis_url)
    assert r.code == 2
    assert_one_line_error(r)
    payload = tmp_path / "p.json"
    payload.write_text('{"to": "file@b"}')
    r = await cli(capsys, "enqueue", queue, "mail", "--payload", f"@{payload}", "--id", "m-2",
                  "--json", "--redis-url", redis_url)  # fmt: skip
    assert r.code == 0 and r.json()["id"] == "m-2"
    job = await app.job(queue, "m-2")
    assert job is not None and job.payload == {"to": "file@b"}
    r = await cli(capsys, "enqueue", queue, "mail", "--payload", f"@{tmp_path}/missing.json",
                  "--redis-url", redis_url)  # fmt: skip
    assert r.code == 2 and "cannot read the payload file" in r.err


async def test_tail_follows_events_live_with_filters(
    app_factory: Callable[..., App],
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("tail")
    app = app_factory()

    @app.task("t", queue=queue)
    async def t(ctx: Context, n: int) -> int:
        return n

    await app.enqueue("t", 0, id="before")
    (last,) = await app.read_events(queue, count=1)
    # A subprocess following from the last event seen: exactly what comes after it.
    proc = spawn(
        "tail", queue, "--json", "--since", last.id, "--count", "3", "--redis-url", redis_url
    )
    try:
        for i in range(3):
            await app.enqueue("t", i, id=f"live-{i}")
        out, err = await asyncio.to_thread(proc.communicate, timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["job"], e["type"]) for e in events] == [(f"live-{i}", "queued") for i in range(3)]

    await app.cancel(queue, "live-1")
    r = await cli(
        capsys,
        "tail",
        queue,
        "--since",
        "start",
        "--job",
        "live-1",
        "--count",
        "2",
        "--json",
        "--redis-url",
        redis_url,
    )
    assert r.code == 0, r.err
    assert [json.loads(x)["type"] for x in r.out.splitlines()] == ["queued", "cancelled"]
    r = await cli(
        capsys,
        "tail",
        queue,
        "--since",
        "start",
        "--type",
        "cancelled",
        "--duration",
        "1",
        "--redis-url",
        redis_url,
    )
    lines = r.out.splitlines()
    assert len(lines) == 1 and "cancelled" in lines[0] and "live-1" in lines[0]
    r = await cli(capsys, "tail", queue, "--type", "exploded", "--redis-url", redis_url)
    assert r.code == 2 and "unknown event type" in r.err


def test_tail_stops_on_sigint(redis_url: str, uniq: Callable[[str], str]) -> None:
    queue = uniq("sig")
    client = redis.Redis.from_url(redis_url)
    events = f"sq:{{{queue}}}:events"
    try:
        client.sadd("sq:queues", queue)
        client.xadd(events, {"t": "queued", "j": "j-1", "n": "x", "a": 1})
        proc = spawn("tail", queue, "--since", "start", "--redis-url", redis_url)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # it is following now: interrupt it
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        client.srem("sq:queues", queue)
        client.delete(events)
        client.close()
    assert "queued" in first and "j-1" in first
    assert proc.returncode == 130
    assert "Traceback" not in err
