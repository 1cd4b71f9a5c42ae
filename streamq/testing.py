"""Testing streamq applications: a pytest plugin and an in-process runner.

Installed with streamq and registered as a pytest plugin (entry point ``pytest11``), it gives:

- ``streamq_server`` (session): an embedded Valkey started once per test session on a free
  port in a temporary directory, stopped at the end; its base URL.
- ``streamq_redis_url`` (per test): a URL on that server with a database of the test's own, so
  tests never see each other's jobs, queues or locks whatever queue names they use; emptied
  when the test ends.
- :func:`run_until_idle`: runs an app's handlers in this process until nothing is queued, due,
  delayed or running, moving delayed jobs and retries' backoff forward instead of sleeping.
- :func:`fire_schedules`: enqueues the next tick(s) of the app's recurring jobs, as if their
  time had come.

Nothing here is a stand-in: jobs go through the real scripts on a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._context import Application

__all__ = ["fire_schedules", "run_until_idle", "streamq_redis_url", "streamq_server"]

log = logging.getLogger(__name__)

# Databases of the session's server: one per test, reused after being emptied.
_DATABASES = 4096
_next_db = itertools.count()


@pytest.fixture(scope="session")
def streamq_server() -> Iterator[str]:
    """An embedded Valkey for the test session; yields its base URL (``redis://host:port``)."""
    from streamq._embedded import free_port, start_server

    directory = Path(tempfile.mkdtemp(prefix="streamq-test-"))
    port = free_port()
    proc = start_server(directory, port, extra=["--databases", str(_DATABASES)])
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def streamq_redis_url(streamq_server: str) -> Iterator[str]:
    """A Redis URL for this test alone: a fresh database on the session's embedded server.
    Give it to ``App(redis_url=...)`` (or ``app.use_redis_url``)."""
    import redis

    # Database 0 is left for whoever shares the server; tests take 1..N-1 in turn.
    db = 1 + next(_next_db) % (_DATABASES - 1)
    url = f"{streamq_server}/{db}"
    yield url
    # The session's own private server: emptying this test's database is safe, and keeps
    # memory flat over a long suite.
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


async def run_until_idle(
    app: Application,
    timeout: float = 10.0,
    *,
    queues: list[str] | None = None,
    fast_forward: bool = True,
    concurrency: int = 10,
) -> None:
    """Runs ``app``'s handlers in this process until its queues (default: every queue it has
    tasks for) have nothing waiting, delayed or running, and no flow parent waits there.

    With ``fast_forward`` (the default), jobs waiting for a ``delay``/``run_at`` or for a
    retry's backoff are made due at once rather than waited for, so a test of a job delayed
    an hour that fails twice with exponential backoff runs in milliseconds; without it, only
    jobs already due count and later ones are left. Recurring jobs do not fire by themselves
    here (see :func:`fire_schedules`). Raises ``TimeoutError`` naming what was still busy
    after ``timeout`` seconds, and whatever the worker raises."""
    import streamq._fetch as fetch_module
    from streamq._worker import Worker

    await app.broker.connect()
    worker = Worker(app, queues, concurrency=concurrency, grace=5.0, scheduler=False)
    served = worker.queues
    # The fetch loop waits up to this long for new work before looking at delayed jobs
    # again; the harness wants moved-forward jobs picked up at once.
    # (A module setting read at every wait; left alone if it ever goes.)
    idle_wait = getattr(fetch_module, "_IDLE_WAIT_MS", None)
    if isinstance(idle_wait, int):
        fetch_module._IDLE_WAIT_MS = 5
    running = asyncio.create_task(worker.run(), name="streamq-testing-worker")
    deadline = time.monotonic() + timeout
    busy: dict[str, int] = {}
    try:
        quiet = 0
        while quiet < 2:
            if running.done():
                running.result()  # the worker's own error, if any
                raise RuntimeError("the worker stopped before the queues were idle")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"not idle after {timeout} s: still busy {busy}"
                    + ("" if fast_forward else " (fast_forward=False leaves delayed jobs)")
                )
            if fast_forward:
                await _make_delayed_due(app.broker, served)
            busy = await _busy(app.broker, served, fast_forward)
            # Twice in a row: an outcome being written can start a flow parent just after.
            quiet = quiet + 1 if not busy and not worker.inflight else 0
            await asyncio.sleep(0.005 if quiet else 0.01)
    finally:
        worker.stop()
        await asyncio.wait([running], timeout=worker.grace + 10)
        if isinstance(idle_wait, int):
            fetch_module._IDLE_WAIT_MS = idle_wait
        if running.done() and not running.cancelled():
            running.result()


async def _make_delayed_due(broker: Broker, queues: list[str]) -> None:
    """Moves every delayed job (delay, run_at, retry backoff) to now: the worker's next fetch
    promotes it as if its time had come. ``XX`` only rescores members still there, so a job
    promoted meanwhile is not brought back."""
    from streamq import _keys

    now_ms = int(time.time() * 1000)
    for queue in queues:
        key = _keys.delayed(queue)
        later = cast(list[bytes], await broker.redis.zrangebyscore(key, f"({now_ms}", "+inf"))
        if later:
            await broker.redis.zadd(key, dict.fromkeys(later, now_ms), xx=True)


async def _busy(broker: Broker, queues: list[str], fast_forward: bool) -> dict[str, int]:
    """What is still to do on ``queues``: entries waiting or delivered-and-unsettled in the
    lanes, delayed jobs (only those already due, without fast-forwarding), and flow parents
    waiting for their children."""
    from streamq import _keys
    from streamq._types import LANES

    now_ms = int(time.time() * 1000)
    pipe = broker.redis.pipeline(transaction=False)
    for queue in queues:
        for lane in LANES:
            pipe.xlen(_keys.lane(queue, lane))
        if fast_forward:
            pipe.zcard(_keys.delayed(queue))
        else:
            pipe.zcount(_keys.delayed(queue), "-inf", now_ms)
        pipe.zcard(_keys.flows_waiting(queue))
    replies = iter(await pipe.execute())
    busy: dict[str, int] = {}
    for queue in queues:
        # Settled entries are deleted from the lanes, so a lane's length is its waiting and
        # running entries together.
        entries = sum(int(next(replies)) for _ in LANES)
        delayed = int(next(replies))
        parents = int(next(replies))
        if parents:
            busy[f"{queue}: flow parents waiting for children"] = parents
        if entries:
            busy[f"{queue}: queued or active"] = entries
        if delayed:
            busy[f"{queue}: delayed"] = delayed
    return busy


async def fire_schedules(
    app: Application, ticks: int = 1, *, queues: list[str] | None = None
) -> int:
    """Enqueues the next ``ticks`` ticks of every recurring job of ``app`` (in code and stored;
    on ``queues``, default all of the app's) as if their times had come, one after another
    from the last tick fired (or from now); returns how many jobs were enqueued. Run them with
    :func:`run_until_idle`."""
    from streamq import _keys
    from streamq._connection import broker_errors
    from streamq._schedule import Scheduler, code_schedules, stored_schedules

    await app.broker.connect()
    scheduler = Scheduler(app, queues)
    for queue in scheduler.queues:
        schedules = {s.id: s for s in code_schedules(app.registry) if s.queue == queue}
        for s in await stored_schedules(app.broker, queue):
            schedules[s.id] = s
        for s in schedules.values():
            with broker_errors(f"reading schedule state of {queue}"):
                last = await app.broker.redis.hget(_keys.schedules_last(queue), s.id)
            tick = int(last) if last is not None else int(time.time() * 1000)
            for _ in range(ticks):
                tick = s.next_after(tick)
                fired = await scheduler._fire(s, tick)
                await scheduler._advance(s, tick, fired or "")
    return scheduler.fired
