"""Job index benchmark: a finished-job lookup by id and a filtered page of 50 with N jobs
retained in one queue (default 1,000,000), on a private embedded Valkey.

    .venv/bin/python tests/benchmarks/bench_index.py [--jobs 1000000] [--samples 200]

The jobs are written through the real scripts (enqueue, fetch, settle; batches of 1,000),
90 % completed and 10 % dead, under two names, with no expiry. Then it times, from the client
(round trips included): ``app.find_job(id)`` over every queue, ``app.job(queue, id)``, and
``app.list_jobs(queue, state="dead", name=..., limit=50)`` from random cursors. Prints p50/p95
and the server's memory per retained job. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from streamq import App, Context, EnqueueRequest
from streamq._embedded import free_port, start_server
from streamq._scripts import Settlement
from streamq._types import LANES

QUEUE = "bench-index"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * p), len(ordered) - 1)] * 1000


async def fill(app: App, jobs: int) -> None:
    started = time.perf_counter()
    for start in range(0, jobs, 1000):
        n = min(1000, jobs - start)
        await app.enqueue_many(
            [
                EnqueueRequest(name="a" if i % 2 else "b", payload=i, id=f"j{i}")
                for i in range(start, start + n)
            ]
        )
        got = (
            await app.scripts.fetch(
                QUEUE, consumer="w", count=n, promote_limit=0, may_take_suspect=True, lanes=LANES
            )
        ).jobs
        settle = [
            Settlement("dead", j.job_id, j.lane, j.entry_id, j.fence, data="boom", ttl_ms=0)
            if int(j.job_id[1:]) % 10 == 0
            else Settlement("completed", j.job_id, j.lane, j.entry_id, j.fence, data=b"\xc0")
            for j in got
        ]
        for k in range(0, len(settle), 250):
            await app.scripts.settle(QUEUE, settle[k : k + 250])
        if start and start % 100_000 == 0:
            print(f"  {start:,} jobs written ({time.perf_counter() - started:.0f} s)", flush=True)


async def main(jobs: int, samples: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="streamq-bench-index-"))
    port = free_port()
    proc = start_server(directory, port)
    app = App("bench", redis_url=f"redis://127.0.0.1:{port}/0", dead_maxlen=jobs)

    @app.task("a", queue=QUEUE)
    async def a(ctx: Context, n: int) -> int:
        return n

    @app.task("b", queue=QUEUE)
    async def b(ctx: Context, n: int) -> int:
        return n

    try:
        await app.connect()
        base = (await app.redis.info("memory"))["used_memory"]
        print(f"index benchmark: {jobs:,} jobs retained in one queue, {samples} samples each")
        print(f"command: python tests/benchmarks/bench_index.py --jobs {jobs} --samples {samples}")
        await fill(app, jobs)
        used = (await app.redis.info("memory"))["used_memory"]
        print(
            f"  memory: {(used - base) / jobs:.0f} bytes per retained job (records, index, dead letters)"
        )
        rng = random.Random(1)
        timings: dict[str, list[float]] = {"find_job": [], "job": [], "page": []}
        for _ in range(samples):
            job_id = f"j{rng.randrange(jobs)}"
            t0 = time.perf_counter()
            assert await app.find_job(job_id) is not None
            timings["find_job"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            assert await app.job(QUEUE, job_id) is not None
            timings["job"].append(time.perf_counter() - t0)
            # A filtered page from a random point of the listing (the cursor a client would
            # hold after paging there): dead jobs named "b".
            start = rng.randrange(0, jobs, 10) // 20 * 20
            cursor = None
            if start:
                score = await app.redis.zscore(f"sq:{{{QUEUE}}}:ix:dead:b", f"j{start}")
                cursor = f"{int(score)}:j{start}" if score is not None else None
            t0 = time.perf_counter()
            page = await app.list_jobs(QUEUE, state="dead", name="b", limit=50, cursor=cursor)
            timings["page"].append(time.perf_counter() - t0)
            assert len(page.jobs) == 50 or page.next is None
        for what, label in (
            ("find_job", "find a job by id in any queue (app.find_job)"),
            ("job", "read a job by queue and id (app.job)"),
            ("page", "page of 50: state=dead name=b, random cursor"),
        ):
            values = timings[what]
            print(
                f"  {label:48s} p50 {_pct(values, 0.5):6.2f} ms   p95 {_pct(values, 0.95):6.2f} ms"
                f"   mean {statistics.mean(values) * 1000:6.2f} ms"
            )
    finally:
        await app.close()
        proc.terminate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(main(options.jobs, options.samples))
