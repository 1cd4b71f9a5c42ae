"""The lease scripts called directly: renewal keeps a delivery, reports a lost one and a
requested cancel; progress and outcomes from a stale token are refused."""

from __future__ import annotations

import asyncio
from typing import Any

from streamq import App, Context, _keys
from streamq._types import LANES


async def _setup(app_factory, queue: str) -> tuple[App, list[Any]]:
    app = app_factory()

    @app.task("t", queue=queue, lease=0.001)
    async def t(ctx: Context, x: int) -> int:
        return x

    await app.enqueue("t", 1, id="job-1")
    head = [_keys.prefix(queue), _keys.GROUP, 1000]
    return app, head


async def _fetch(app: App, queue: str, head: list[Any], consumer: str) -> list[Any]:
    _, jobs, _, _ = await app.scripts.call(
        "fetch",
        [_keys.events(queue), _keys.stats(queue), _keys.delayed(queue), _keys.paused(queue)],
        [*head, consumer, 10, 100, "1", *LANES],
    )
    return jobs


async def _renew(app: App, queue: str, head: list[Any], consumer: str, job: list[Any]) -> Any:
    entry, lane, job_id, _, _, fence, _, _ = job
    return await app.scripts.call(
        "renew",
        [_keys.events(queue), _keys.workers(queue)],
        [*head, consumer, 15000, job_id, lane, entry, fence],
    )


async def test_renew_keeps_then_reports_lost_and_cancel(app_factory, queue) -> None:
    app, head = await _setup(app_factory, queue)
    [job] = await _fetch(app, queue, head, "A")
    assert await _renew(app, queue, head, "A", job) == [[], []]
    # Another worker reclaims the (1 ms) lease: A's token is void from then on.
    await asyncio.sleep(0.01)
    args: list[Any] = [*head, "B", 0, 100, 1000, 60000, 0]
    for lane in LANES:
        args += [lane, "0-0"]
    _, requeued, _, _ = await app.scripts.call(
        "reclaim", [_keys.events(queue), _keys.stats(queue), _keys.dead(queue)], args
    )
    assert requeued == 1
    assert await _renew(app, queue, head, "A", job) == [[b"job-1"], []]
    entry, lane, job_id, _, _, fence, _, _ = job
    progressed = await app.scripts.call(
        "progress", [_keys.events(queue)], [*head, "job-1", fence, "50.0", "stale"]
    )
    assert progressed == 0
    [again] = await _fetch(app, queue, head, "B")
    assert again[5] == fence + 1  # a new token for the new delivery
    await app.cancel(queue, "job-1")
    assert await _renew(app, queue, head, "B", again) == [[], [b"job-1"]]
    applied = await app.scripts.call(
        "settle",
        [_keys.events(queue), _keys.stats(queue)],
        [*head, 1000, 0, "c", job_id, lane, entry, fence, b"", 1000, ""],
    )
    assert applied == [0]
    [workers] = [await app.redis.zrange(_keys.workers(queue), 0, -1)]
    assert set(workers) == {b"A", b"B"}


async def test_pause_script_flags_the_queue_and_says_so(app_factory, queue) -> None:
    app, _ = await _setup(app_factory, queue)
    await app.pause(queue)
    assert await app.redis.exists(_keys.paused(queue)) == 1
    await app.resume(queue)
    assert await app.redis.exists(_keys.paused(queue)) == 0
    types = [e.type for e in await app.read_events(queue)]
    assert types[-2:] == ["paused", "resumed"]
