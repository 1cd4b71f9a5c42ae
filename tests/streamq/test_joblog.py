"""Job logs: ``ctx.log`` appends to the job's capped log, read by ``app.job_logs`` and seen as
``log`` events; the log expires and is deleted with its job record on every path."""

from __future__ import annotations

import asyncio

import pytest

from streamq import App, Context, EnqueueRequest, Fatal, _keys
from streamq._codec import decode_spec
from streamq._context import Delivery
from streamq._joblog import LogLimits, LogLine, encode_line, write
from streamq._scripts import Settlement
from streamq._types import LANES


def _app(app_factory, queue: str, **options) -> App:
    app = app_factory(**options)

    @app.task("t", queue=queue, max_attempts=1)
    async def t(ctx: Context, x: int) -> int:
        await ctx.log("starting", x=x, tags=["a", "b"])
        if x < 0:
            await ctx.log("giving up")
            raise Fatal("negative")
        await ctx.log("done")
        return x

    @app.task("quiet", queue=queue)
    async def quiet(ctx: Context, x: int) -> int:
        return x

    return app


async def _deliver(app: App, queue: str) -> Delivery:
    [f] = (
        await app.scripts.fetch(
            queue, consumer="w", count=1, promote_limit=100, may_take_suspect=True, lanes=LANES
        )
    ).jobs
    return Delivery(
        queue=queue,
        lane=f.lane,
        entry_id=f.entry_id,
        job_id=f.job_id,
        spec=decode_spec(f.spec),
        attempt=f.attempt,
        fence=f.fence,
        deliveries=f.deliveries,
    )


async def test_lines_events_and_expiry_with_the_record(app_factory, queue, run_worker) -> None:
    app = _app(app_factory, queue, result_ttl=600)
    ok = await app.enqueue("t", 5, id="ok")
    bad = await app.enqueue("t", -1, id="bad")
    quiet = await app.enqueue("quiet", 1, id="quiet")
    async with run_worker(app):
        assert await ok.result(timeout=20) == 5
        await quiet.result(timeout=20)
        while (await bad.state()) != "dead":
            await asyncio.sleep(0.02)

    log = await app.job_logs(queue, "ok")
    assert log is not None and log.dropped == 0
    assert [(ln.message, ln.fields, ln.attempt) for ln in log.lines] == [
        ("starting", {"x": 5, "tags": ["a", "b"]}, 1),
        ("done", {}, 1),
    ]
    assert all(ln.at > 0 and not ln.truncated for ln in log.lines)
    bad_log = await app.job_logs(queue, "bad")
    assert bad_log is not None
    assert [ln.message for ln in bad_log.lines] == ["starting", "giving up"]

    events = [e async for e in ok.events()]
    assert [(e.type, e.message) for e in events if e.type == "log"] == [
        ("log", "starting"),
        ("log", "done"),
    ]
    types = [e.type for e in events]
    assert types.index("active") < types.index("log") < types.index("completed")

    # The logs expire with their records: the same time to live, no key for a silent job.
    r = app.redis
    for job_id in ("ok", "bad"):
        record_ttl = await r.pttl(_keys.job(queue, job_id))
        log_ttl = await r.pttl(_keys.job_log(queue, job_id))
        assert record_ttl > 0 and log_ttl > 0 and abs(record_ttl - log_ttl) < 5_000
    assert await r.exists(_keys.job_log(queue, "quiet")) == 0
    quiet_log = await app.job_logs(queue, "quiet")
    assert quiet_log is not None and quiet_log.lines == [] and quiet_log.dropped == 0
    assert await app.job_logs(queue, "nobody") is None


async def test_capped_by_lines_and_bytes(app_factory, queue) -> None:
    app = _app(app_factory, queue)
    await app.enqueue("t", 1, id="many")
    await app.connect()
    d = await _deliver(app, queue)
    for i in range(50):
        by_lines = LogLimits(lines=20, line_bytes=200, total_bytes=10_000)
        assert await write(app.broker, d, 1.0, f"line {i}", {"i": i}, by_lines)
    log = await app.job_logs(queue, "many")
    assert log is not None
    assert [ln.message for ln in log.lines] == [f"line {i}" for i in range(30, 50)]
    assert log.dropped == 30

    # Long lines: each cut to line_bytes, the oldest dropped to stay within total_bytes.
    limits = LogLimits(lines=20, line_bytes=200, total_bytes=1000)
    for i in range(10):
        assert await write(app.broker, d, 2.0, f"{i}" + "é" * 500, {"big": "x" * 500}, limits)
    log = await app.job_logs(queue, "many")
    assert log is not None and log.dropped == 60 - len(log.lines)
    kept = await app.redis.lrange(_keys.job_log(queue, "many"), 0, -1)
    assert sum(len(k) for k in kept) <= 1000 and all(len(k) <= 200 for k in kept)
    assert log.lines[-1].truncated and log.lines[-1].message.startswith("9é")
    assert log.lines[-1].fields == {}


def test_encode_line_fits_any_message() -> None:
    for text in ("x" * 5000, '"\\' * 3000, "\u0001" * 1000, "😀" * 2000):
        data = encode_line(LogLine(at=1.0, attempt=1, message=text, fields={"a": 1}), 300)
        assert len(data) <= 300


async def test_a_lost_lease_writes_nothing(app_factory, queue) -> None:
    app = _app(app_factory, queue)
    await app.enqueue("t", 1, id="j")
    await app.connect()
    d = await _deliver(app, queue)
    await app.cancel(queue, "j")  # an active job: cancel is asked, the delivery still holds it
    assert await Context(app, d).log("still mine")
    [applied] = await app.scripts.settle(
        queue, [Settlement("completed", d.job_id, d.lane, d.entry_id, d.fence, ttl_ms=60_000)]
    )
    assert applied
    assert not await Context(app, d).log("too late")
    log = await app.job_logs(queue, "j")
    assert log is not None and [ln.message for ln in log.lines] == ["still mine"]


async def _logged_job(app: App, queue: str, job_id: str, outcome: str = "completed") -> None:
    await app.enqueue("t", 1, id=job_id)
    d = await _deliver(app, queue)
    assert await Context(app, d).log(f"hello from {job_id}")
    [applied] = await app.scripts.settle(
        queue,
        [Settlement(outcome, d.job_id, d.lane, d.entry_id, d.fence, data="e", ttl_ms=600_000)],  # type: ignore[arg-type]
    )
    assert applied


@pytest.mark.parametrize("path", ["keep_last", "remove", "clean", "purge", "replay", "dedup"])
async def test_deleted_with_the_record(app_factory, queue, path) -> None:
    app = _app(app_factory, queue, keep_last=2 if path == "keep_last" else 0)
    await app.connect()
    outcome = "dead" if path in ("purge", "replay") else "completed"
    await _logged_job(app, queue, "first", outcome)
    key = _keys.job_log(queue, "first")
    assert await app.redis.exists(key) == 1
    if path == "keep_last":
        await _logged_job(app, queue, "second")
        await _logged_job(app, queue, "third")
        assert await app.job(queue, "first") is None
    elif path == "remove":
        await app.remove(queue, "first")
    elif path == "clean":
        await asyncio.sleep(0.02)
        assert await app.clean(queue, older_than=0.01) == 1
    elif path == "purge":
        assert await app.purge_dead(queue) == 1
    elif path == "replay":
        assert await app.replay_dead(queue) == 1  # a fresh record: the old log goes with it
        log = await app.job_logs(queue, "first")
        assert log is not None and log.lines == []
    else:
        # A finished job past its dedup window: enqueueing the id again starts a new record.
        await app.enqueue_many([EnqueueRequest(name="t", payload=2, id="d", dedup_ttl=0.01)])
        await app.connect()
        d = await _deliver(app, queue)
        assert await Context(app, d).log("old run")
        await app.scripts.settle(
            queue,
            [Settlement("completed", d.job_id, d.lane, d.entry_id, d.fence, ttl_ms=600_000)],
        )
        await asyncio.sleep(0.05)
        await app.enqueue_many([EnqueueRequest(name="t", payload=3, id="d", dedup_ttl=0.01)])
        assert (await app.job(queue, "d")).state == "queued"  # type: ignore[union-attr]
        key = _keys.job_log(queue, "d")
    assert await app.redis.exists(key) == 0


async def test_plain_handlers_log_from_their_thread(app_factory, queue, run_worker) -> None:
    app = app_factory()

    @app.task("plain", queue=queue)
    def plain(ctx: Context, x: int) -> int:
        assert ctx.log_from_thread("in a thread", x=x)
        return x

    job = await app.enqueue("plain", 4, id="p")
    async with run_worker(app):
        assert await job.result(timeout=20) == 4
    log = await app.job_logs(queue, "p")
    assert log is not None and [(ln.message, ln.fields) for ln in log.lines] == [
        ("in a thread", {"x": 4})
    ]
