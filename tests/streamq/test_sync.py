"""The sync facade: enqueue and wait from plain threads with no event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from streamq import App, Context, EnqueueRequest, JobFailed, SyncInEventLoop, Worker
from tests.conftest import purge_queues


@pytest.fixture
def sync_app(redis_url: str, uniq: Callable[[str], str]) -> Iterator[tuple[App, str]]:
    queue = uniq("sync")
    app = App("sync-test", redis_url=redis_url)
    yield app, queue
    app.close_sync()
    purge_queues(redis_url, [queue])


def _serve_in_thread(app: App) -> Callable[[], None]:
    """Runs a Worker for ``app`` on its own loop in a thread (as a separate worker process
    would); returns a function that stops it."""
    ready = threading.Event()
    held: dict[str, object] = {}

    async def main() -> None:
        worker = Worker(app, concurrency=20)
        held["worker"], held["loop"] = worker, asyncio.get_running_loop()
        ready.set()
        try:
            await worker.run()
        finally:
            await app.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),))
    thread.start()
    assert ready.wait(10)

    def stop() -> None:
        loop, worker = held["loop"], held["worker"]
        assert isinstance(loop, asyncio.AbstractEventLoop) and isinstance(worker, Worker)
        loop.call_soon_threadsafe(worker.stop)
        thread.join(30)
        assert not thread.is_alive()

    return stop


def test_twenty_threads_enqueue_and_wait_with_no_loop_running(sync_app: tuple[App, str]) -> None:
    app, queue = sync_app

    @app.task("square", queue=queue)
    async def square(ctx: Context, x: int) -> int:
        return x * x

    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()  # this test really runs with no loop
    stop = _serve_in_thread(app)
    try:
        start = threading.Barrier(20)

        def produce(i: int) -> tuple[int, str | None, bool]:
            start.wait(10)
            job = app.enqueue_sync("square", i, id=f"square-{i}")
            return job.result(timeout=20), job.state(), job.deduplicated

        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(produce, range(20)))
        assert results == [(i * i, "completed", False) for i in range(20)]
        # One background loop for every thread and call, not one per call.
        assert [t.name for t in threading.enumerate()].count("streamq-sync") == 1
        # The same id again is deduplicated and answers with the stored result.
        again = app.enqueue_sync("square", 3, id="square-3")
        assert again.deduplicated and again.result(timeout=5) == 9
    finally:
        stop()


def test_many_cancel_and_failures_block_like_their_async_twins(
    sync_app: tuple[App, str],
) -> None:
    app, queue = sync_app

    @app.task("boom", queue=queue)
    async def boom(ctx: Context, x: int) -> int:
        raise ValueError(f"no {x}")

    later, failing = app.enqueue_many_sync(
        [
            EnqueueRequest(name="boom", payload=1, delay=3600),
            EnqueueRequest(name="boom", payload=2),
        ]
    )
    assert later.state() == "scheduled"
    assert later.cancel() is True
    assert later.state() == "cancelled"
    with pytest.raises(TimeoutError):
        failing.result(timeout=0.3)  # no worker yet
    stop = _serve_in_thread(app)
    try:
        with pytest.raises(JobFailed, match="no 2"):
            failing.result(timeout=20)
    finally:
        stop()


async def test_a_sync_call_inside_a_running_loop_is_refused(app_factory, queue) -> None:
    app = app_factory()

    @app.task("noop", queue=queue)
    async def noop(ctx: Context, x: int) -> int:
        return x

    with pytest.raises(SyncInEventLoop, match=r"await app\.enqueue"):
        app.enqueue_sync("noop", 1)
    # Made in a thread (fine), then used on the loop (refused, not a stalled loop).
    job = await asyncio.to_thread(app.enqueue_sync, "noop", 1)
    with pytest.raises(SyncInEventLoop):
        job.state()
    await asyncio.to_thread(app.close_sync)
