"""Dashboard benchmark: server time per page with many retained jobs in 20 queues, and the
Redis commands per second that open overview pages cost. Not a test: it prints figures.

    .venv/bin/python tests/benchmarks/bench_ui.py [--jobs 1000000] [--fill-seconds 120]
        [--queues 20] [--samples 200] [--watch-seconds 10] [--rate-samples 20]

On a private embedded Valkey it writes up to ``--jobs`` finished jobs (90 % completed, 10 %
dead, under two task names, no expiry) through the real scripts, spread over ``--queues``
queues, stopping when ``--fill-seconds`` have passed; it says how many it wrote. Right after,
it times reading the rates of every queue at once (``--rate-samples`` times; each queue's last
minute then holds thousands of events, the read model's worst case). Then, with
the server under uvicorn in this process, it times each page from the request's first byte in
to the response's last byte out (server time, measured by an ASGI wrapper):

- overview: ``GET /ui/`` with the shared snapshot re-read from Redis for every request (its
  cache is off, the worst case: normally open pages share one read per second);
- explorer page: ``GET /ui/queues/{q}`` and the listing its script fetches,
  ``GET /ui/api/queues/{q}/jobs?state=dead&limit=50`` (from random cursors after the first);
- job page: ``GET /ui/queues/{q}/jobs/{id}`` of a random retained job.

Last, it opens 1 and then 50 overview live streams (``/ui/live``) while a producer enqueues
jobs into a few queues, and reports Redis commands per second from ``INFO commandstats``
deltas: open pages should add nothing beyond one event feed per queue (which the server's
timing of jobs keeps open anyway).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from server import ServerSettings, create_app, running_server
from streamq import App, Context, EnqueueRequest, ReadModel, event_feeds
from streamq._embedded import free_port, start_server
from streamq._scripts import Settlement
from streamq._types import LANES

BATCH = 1000


async def _echo(ctx: Context, n: int) -> int:
    return n


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * p), len(ordered) - 1)] * 1000


class ServerTimer:
    """ASGI wrapper recording, per request path kind, the time from the request's arrival
    to its last body byte."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state  # what running_server reads of the application
        self.kind: str | None = None
        self.times: dict[str, list[float]] = defaultdict(list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.kind is None:
            await self.app(scope, receive, send)
            return
        kind, started = self.kind, time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.times[kind].append(time.perf_counter() - started)

        await self.app(scope, receive, timed_send)


async def fill(app: App, queues: list[str], jobs: int, budget: float) -> int:
    """Writes finished jobs round-robin over ``queues`` until ``jobs`` or ``budget`` s."""
    started = time.perf_counter()
    written = 0
    while written < jobs and time.perf_counter() - started < budget:
        queue = queues[(written // BATCH) % len(queues)]
        n = min(BATCH, jobs - written)
        await app.enqueue_many(
            [
                EnqueueRequest(
                    name=("a-" if i % 2 else "b-") + queue, payload=i, id=f"j{i}", queue=queue
                )
                for i in range(written, written + n)
            ]
        )
        got = (
            await app.scripts.fetch(
                queue, consumer="w", count=n, promote_limit=0, may_take_suspect=True, lanes=LANES
            )
        ).jobs
        settle = [
            Settlement("dead", j.job_id, j.lane, j.entry_id, j.fence, data="boom", ttl_ms=0)
            if int(j.job_id[1:]) % 10 == 0
            else Settlement("completed", j.job_id, j.lane, j.entry_id, j.fence, data=b"\xc0")
            for j in got
        ]
        for k in range(0, len(settle), 250):
            await app.scripts.settle(queue, settle[k : k + 250])
        written += n
        if written % 100_000 == 0:
            print(f"  {written:,} jobs written ({time.perf_counter() - started:.0f} s)", flush=True)
    return written


async def time_rates(app: App, queues: list[str], samples: int) -> None:
    """Reads the rates of every queue at once, as the overview and ``streamq inspect`` do
    (``ReadModel.rates`` over one clock reading), right after the fill: every queue's last
    minute holds thousands of events, the read model's worst case."""
    model = ReadModel(app.broker)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        now_ms = await model.server_ms()
        await asyncio.gather(*(model.rates(q, now_ms) for q in queues))
        times.append(time.perf_counter() - started)
    print(
        f"  rates of {len(queues)} queues at once, {samples} reads: p50 {_pct(times, 0.5):7.2f} ms"
        f"   p95 {_pct(times, 0.95):7.2f} ms"
    )


async def commandstats(app: App) -> dict[str, int]:
    info = await app.redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}


@contextlib.asynccontextmanager
async def live_pages(url: str, count: int) -> AsyncIterator[None]:
    """``count`` open overview pages: each reads its live stream until closed."""
    client = httpx.AsyncClient(base_url=url, timeout=None)
    opened = asyncio.Event()
    first: list[int] = []

    async def page() -> None:
        async with client.stream("GET", "/ui/live") as response:
            assert response.status_code == 200, response.status_code
            async for line in response.aiter_lines():
                if line.startswith("event: overview") and len(first) < count:
                    first.append(1)
                    if len(first) == count:
                        opened.set()

    tasks = [asyncio.create_task(page()) for _ in range(count)]
    if not count:
        opened.set()
    try:
        await asyncio.wait_for(opened.wait(), 60)
        yield
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()


async def produce(app: App, queues: list[str], stop: asyncio.Event) -> None:
    """A steady trickle of new jobs (20 per second over ``queues``): events for the feeds."""
    i = 0
    while not stop.is_set():
        queue = queues[i % len(queues)]
        await app.enqueue(f"a-{queue}", i, queue=queue)
        i += 1
        await asyncio.sleep(0.05)


async def watch(app: App, url: str, queues: list[str], pages: int, seconds: float) -> None:
    stop = asyncio.Event()
    producer = asyncio.create_task(produce(app, queues[:3], stop))
    try:
        async with live_pages(url, pages):
            await asyncio.sleep(1.0)  # past the pages' first snapshot reads
            # XREAD loops of this process: the timing of every queue's jobs follows one per
            # queue from the start; open pages share them.
            feeds = len(event_feeds(app.broker).feeds)
            before = await commandstats(app)
            await asyncio.sleep(seconds)
            after = await commandstats(app)
    finally:
        stop.set()
        await producer
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta["info"] = delta.get("info", 0) - 1  # our own second INFO call
    total = sum(delta.values())
    top = sorted(((n, k) for k, n in delta.items() if n > 0), reverse=True)[:6]
    shown = ", ".join(f"{k} {n / seconds:.1f}" for n, k in top)
    print(
        f"  {pages:2d} open overview(s), {feeds} event feeds: {total / seconds:7.1f} commands/s"
        f"  ({shown})"
    )


async def main(options: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="streamq-bench-ui-"))
    proc = start_server(directory, free_port())
    args = [str(a) for a in proc.args]  # type: ignore[union-attr]
    port = int(args[args.index("--port") + 1])
    app = App("bench-ui", redis_url=f"redis://127.0.0.1:{port}/0", dead_maxlen=options.jobs)
    queues = [f"bench-ui-{i:02d}" for i in range(options.queues)]
    for queue in queues:  # two task names per queue (names are unique within an app)
        for name in ("a", "b"):
            app.task(f"{name}-{queue}", queue=queue)(_echo)

    print(
        "command: .venv/bin/python tests/benchmarks/bench_ui.py "
        f"--jobs {options.jobs} --fill-seconds {options.fill_seconds} --queues {options.queues} "
        f"--samples {options.samples} --watch-seconds {options.watch_seconds} "
        f"--rate-samples {options.rate_samples}"
    )
    try:
        await app.connect()
        for queue in queues:
            await app.register_queue(queue)
        written = await fill(app, queues, options.jobs, options.fill_seconds)
        print(f"  {written:,} finished jobs retained over {len(queues)} queues")
        await time_rates(app, queues, options.rate_samples)
        settings = ServerSettings(
            rate_limit_per_second=0, stats_sample_seconds=5, sse_max_per_token=200
        )
        starlette = create_app(settings, app)
        timer = ServerTimer(starlette)
        overview = starlette.state.ui_overview
        async with (
            running_server(timer) as url,  # type: ignore[arg-type]
            httpx.AsyncClient(base_url=url, timeout=60) as client,
        ):
            rng = random.Random(1)
            cursors: list[str | None] = [None]
            for _ in range(3):  # warm up: templates compiled, scripts loaded
                await client.get("/ui/")
            for i in range(options.samples):
                overview.max_age = 0.0
                timer.kind = "overview"
                assert (await client.get("/ui/")).status_code == 200
                queue = queues[i % len(queues)]
                timer.kind = "explorer page (HTML)"
                assert (await client.get(f"/ui/queues/{queue}")).status_code == 200
                timer.kind = "explorer listing (50 dead)"
                params: dict[str, Any] = {"state": "dead", "limit": 50}
                cursor = rng.choice(cursors)
                if cursor:
                    params["cursor"] = cursor
                listing = await client.get(f"/ui/api/queues/{queue}/jobs", params=params)
                if listing.status_code == 200:
                    nxt = listing.json()["next"]
                    if nxt and len(cursors) < 1000:
                        cursors.append(nxt)
                else:
                    timer.times.pop("explorer listing (50 dead)", None)
                timer.kind = "job page"
                n = rng.randrange(written)
                home = queues[(n // BATCH) % len(queues)]
                assert (await client.get(f"/ui/queues/{home}/jobs/j{n}")).status_code == 200
                timer.kind = None
            print(f"  server time per request, {options.samples} samples each:")
            for kind, values in timer.times.items():
                print(
                    f"    {kind:28s} p50 {_pct(values, 0.5):7.2f} ms   p95 "
                    f"{_pct(values, 0.95):7.2f} ms   mean {statistics.mean(values) * 1000:7.2f} ms"
                )
            overview.max_age = 1.0
            print(f"  Redis commands per second over {options.watch_seconds:.0f} s, a producer")
            print("  enqueueing 20 jobs/s into 3 queues, no worker:")
            for pages in (0, 1, 50):
                await watch(app, url, queues, pages, options.watch_seconds)
    finally:
        await app.close()
        proc.terminate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--fill-seconds", type=float, default=120.0)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--watch-seconds", type=float, default=10.0)
    parser.add_argument("--rate-samples", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
