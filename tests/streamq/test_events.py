"""The one events reader: every watcher of a queue in a process shares one feed, and a
follower starting from an old id gets the backlog then the live events, in order, without a
gap or a duplicate (also when it falls behind its buffer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from streamq import App, Context, Event, EventFeeds, event_feeds
from streamq._events import EventFollower, entry_key


def _app(app_factory: Callable[..., App], queue: str) -> App:
    app = app_factory()

    @app.task("ok", queue=queue)
    async def ok(ctx: Context, n: int) -> int:
        return n

    return app


async def _collect(follower: EventFollower, count: int) -> list[Event]:
    got: list[Event] = []
    async with asyncio.timeout(20):
        while len(got) < count:
            got.extend(await follower.next_batch(1.0))
    return got


async def test_waiters_and_followers_share_one_feed_per_queue(
    app_factory: Callable[..., App], queue: str, run_worker: Any
) -> None:
    app = _app(app_factory, queue)
    handles = [await app.enqueue("ok", i, id=f"j-{i}") for i in range(20)]
    followed: list[Event] = []

    async def follow() -> None:
        async for event in app.events(queue):
            followed.append(event)
            if sum(e.type == "completed" for e in followed) == len(handles):
                return

    follower = asyncio.create_task(follow())
    waits = [asyncio.create_task(h.result(timeout=20)) for h in handles]
    await asyncio.sleep(0.2)  # everyone is subscribed before the work starts
    feeds: EventFeeds = event_feeds(app.broker)
    assert list(feeds.feeds) == [queue]  # one reader for the queue ...
    assert len(feeds.feeds[queue].subscribers) == 2  # ... serving the waiters and the follower
    async with run_worker(app, concurrency=10):
        assert sorted(await asyncio.gather(*waits)) == list(range(20))
        await asyncio.wait_for(follower, 20)
    assert {e.job for e in followed if e.type == "completed"} == {h.id for h in handles}


async def test_a_follower_resumes_exactly_after_an_id(
    app_factory: Callable[..., App], queue: str
) -> None:
    app = _app(app_factory, queue)
    for i in range(30):
        await app.enqueue("ok", i, id=f"a-{i}")
    stored = await app.read_events(queue, after="0-0", count=1000)
    assert len(stored) == 30
    # From the 10th event: the 20 after it from Redis, then live ones, each once, in order.
    follower = EventFollower(app.broker, queue, stored[9].id, buffer=5)
    try:
        backlog = await _collect(follower, 20)
        for i in range(30, 60):  # more at once than the buffer holds: caught up from Redis
            await app.enqueue("ok", i, id=f"a-{i}")
        live = await _collect(follower, 30)
    finally:
        follower.close()
    got = backlog + live
    assert [e.id for e in backlog] == [e.id for e in stored[10:]]
    assert [e.job for e in got] == [f"a-{i}" for i in range(10, 60)]
    keys = [entry_key(e.id) for e in got]
    assert keys == sorted(set(keys))  # in order, no duplicate
    assert not await follower.next_batch(0.2)  # nothing more, nothing repeated


async def test_a_job_follower_ends_with_its_terminal_event(
    app_factory: Callable[..., App], queue: str, run_worker: Any
) -> None:
    app = _app(app_factory, queue)
    handle = await app.enqueue("ok", 7, id="mine")
    await app.enqueue("ok", 8, id="other")
    async with run_worker(app, concurrency=2):
        types = [e.type async for e in handle.events()]
    assert types[0] == "queued" and types[-1] == "completed"
    assert "active" in types
