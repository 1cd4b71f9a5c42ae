"""Job operations benchmark: tagging, job logs, a priority change and deleting a queue, on a
private embedded Valkey.

    .venv/bin/python tests/benchmarks/bench_jobops.py [--jobs 200000]

Enqueues N jobs of a task that indexes a payload field (each job tagged ``wallet:<n % 1000>``),
1,000 a call, against the same jobs of an untagged task: the time and memory tags add. Then,
timed from the client (round trips included): a page of 50 by tag, ``ctx.log`` (10 lines for
each of 1,000 active jobs), ``app.set_priority`` on 1,000 queued jobs, and deleting the queue
one batch at a time (``delete_queue(max_batches=1)``, so each call is one bounded batch plus
its own small reads). Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from streamq import App, Context, EnqueueRequest
from streamq._codec import decode_spec
from streamq._context import Delivery
from streamq._embedded import free_port, start_server
from streamq._types import LANES

QUEUE = "bench-jobops"


class Sync(msgspec.Struct, frozen=True):
    wallet: str


def _show(label: str, values: list[float]) -> None:
    ordered = sorted(values)
    p95 = ordered[min(int(len(ordered) * 0.95), len(ordered) - 1)]
    print(
        f"  {label:46s} {len(values):6d} calls  p50 {statistics.median(values):6.2f} ms"
        f"  p95 {p95:6.2f} ms  max {max(values):6.2f} ms"
    )


async def _server(app: App, label: str) -> None:
    """The server's own mean time per script call since the last call, and how many script
    calls it logged as slower than 10 ms; then resets both."""
    r = app.redis
    stats = await r.info("commandstats")
    calls = stats.get("cmdstat_evalsha", {"calls": 0, "usec_per_call": 0.0, "usec": 0})
    slow = [e for e in await r.slowlog_get(10_000) if bytes(e["command"]).startswith(b"EVALSHA")]
    print(
        f"    server: {label}: {calls['calls']} script calls, mean {calls['usec_per_call'] / 1000:.2f}"
        f" ms each, {calls['usec'] / 1e6:.2f} s in all; {len(slow)} over 10 ms"
    )
    await r.config_resetstat()
    await r.slowlog_reset()


async def _timed(call: Callable[[], Awaitable[Any]], into: list[float]) -> Any:
    t0 = time.perf_counter()
    out = await call()
    into.append((time.perf_counter() - t0) * 1000)
    return out


async def main(jobs: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="streamq-bench-jobops-"))
    port = free_port()
    proc = start_server(directory, port)
    app = App("bench", redis_url=f"redis://127.0.0.1:{port}/0")

    @app.task("sync", queue=QUEUE, index=["wallet"])
    async def sync(ctx: Context, req: Sync) -> str:
        return req.wallet

    @app.task("plain", queue=QUEUE)
    async def plain(ctx: Context, req: Sync) -> str:
        return req.wallet

    try:
        await app.connect()
        r = app.redis
        await r.config_set("slowlog-log-slower-than", 10_000)
        await r.config_resetstat()
        print(f"job operations benchmark: {jobs:,} tagged and {jobs:,} untagged jobs, one queue")
        print(f"command: python tests/benchmarks/bench_jobops.py --jobs {jobs}")
        took: dict[str, list[float]] = {"plain": [], "sync": []}
        for name, label in (("plain", "untagged"), ("sync", "tagged (+tag-1)")):
            for start in range(0, jobs, 1000):
                requests = [
                    EnqueueRequest(name=name, payload=Sync(f"W{i % 1000}"), id=f"{name}-{i}")
                    for i in range(start, min(start + 1000, jobs))
                ]
                await _timed(lambda rs=requests: app.enqueue_many(rs), took[name])  # type: ignore[misc]
            _show(f"enqueue_many of 1,000 {label} jobs", took[name])
            await _server(app, "enqueue-3" if name == "plain" else "enqueue-3 and tag-1")
        tag_sets = sum(
            [await r.memory_usage(f"sq:{{{QUEUE}}}:ix:tag:wallet:W{w}") or 0 for w in range(1000)]
        )
        tag_sets += await r.memory_usage(f"sq:{{{QUEUE}}}:ix:tags") or 0
        record = await r.hget(f"sq:{{{QUEUE}}}:job:sync-0", "tags") or b""
        print(
            f"  memory of the tag index: {tag_sets / jobs:.0f} bytes per tagged job in the tag"
            f" sets, plus the record's tags field ({len(record)} bytes of value)"
        )

        pages: list[float] = []
        for w in range(0, 1000, 5):
            await _timed(lambda w=w: app.list_jobs(QUEUE, tag=f"wallet:W{w}", limit=50), pages)  # type: ignore[misc]
        _show("page of 50 by tag", pages)
        await _server(app, "list-1")

        fetched = (
            await app.scripts.fetch(
                QUEUE, consumer="w", count=1000, promote_limit=0, may_take_suspect=True, lanes=LANES
            )
        ).jobs
        logs: list[float] = []
        for f in fetched:
            delivery = Delivery(
                queue=QUEUE,
                lane=f.lane,
                entry_id=f.entry_id,
                job_id=f.job_id,
                spec=decode_spec(f.spec),
                attempt=f.attempt,
                fence=f.fence,
                deliveries=f.deliveries,
            )
            ctx = Context(app, delivery)
            for k in range(10):
                await _timed(lambda k=k, c=ctx: c.log(f"step {k}", wallet="W1", n=k), logs)  # type: ignore[misc]
        _show("ctx.log (one line)", logs)
        await _server(app, "log-2")

        moves: list[float] = []
        for i in range(jobs - 1000, jobs):
            await _timed(lambda i=i: app.set_priority(QUEUE, f"sync-{i}", "high"), moves)  # type: ignore[misc]
        _show("app.set_priority (a queued job)", moves)
        await _server(app, "reprioritize-2")

        drops: list[float] = []
        total = 0
        t0 = time.perf_counter()
        while True:
            deletion = await _timed(lambda: app.delete_queue(QUEUE, max_batches=1), drops)
            total += deletion.jobs
            if deletion.done:
                break
        print(f"  delete_queue: {total:,} jobs in {time.perf_counter() - t0:.1f} s")
        _show("one deletion batch (100 jobs) + its reads", drops)
        await _server(app, "dropqueue-2")
        left = [k async for k in r.scan_iter(match=f"sq:{{{QUEUE}}}:*", count=10_000)]
        print(f"  keys left under the queue's prefix: {len(left)} (script replies expire in 30 s)")
    finally:
        await app.close()
        proc.terminate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200_000)
    options = parser.parse_args()
    asyncio.run(main(options.jobs))
