"""Crash benchmark: workers SIGKILLed under a steady backlog; how soon their jobs run again.

    .venv/bin/python tests/benchmarks/bench_crash.py [--jobs 20000] [--workers 4] [--kills 20]
        [--lease 2.0]

Starts its own Valkey (never a shared server), enqueues the backlog, runs worker processes of
``tests/streamq/crash_app.py`` and kills one at random every ~1.5-2.5 s (restarting it), then
reads the events stream: for each job taken back from a killed worker, kill -> requeue (the
``reclaimed`` event) and kill -> re-run (its next ``active`` event), on the server's clock
(the same machine). Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from streamq import App, EnqueueRequest, _keys  # noqa: E402
from streamq._embedded import free_port, start_server  # noqa: E402
from tests.streamq.procs import spawn_worker, stop  # noqa: E402


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * p), len(ordered) - 1)] if ordered else float("nan")


async def main(jobs: int, workers: int, kills: int, lease: float) -> None:
    directory = Path(tempfile.mkdtemp(prefix="streamq-bench-crash-"))
    port = free_port()
    server = start_server(directory, port)
    url = f"redis://127.0.0.1:{port}/0"
    queue = "bench-crash"
    app = App("bench", redis_url=url, events_maxlen=10 * jobs)

    @app.task("work", queue=queue, lease=lease)
    async def work(ctx: object, tag: str) -> str:
        raise AssertionError  # runs in the worker processes

    env = {"CRASH_LEASE": str(lease), "CRASH_WORK": "0.02", "CRASH_EVENTS": str(10 * jobs)}
    procs = []
    killed_at: dict[str, float] = {}  # pid -> ms
    try:
        for start in range(0, jobs, 1000):
            await app.enqueue_many(
                [EnqueueRequest(name="work", payload="x") for _ in range(min(1000, jobs - start))]
            )
        procs = [spawn_worker(url, queue, name=f"w{i}", env=env) for i in range(workers)]
        rng = random.Random(7)
        for k in range(kills):
            await asyncio.sleep(rng.uniform(1.5, 2.5))
            victim = rng.randrange(workers)
            procs[victim].send_signal(signal.SIGKILL)
            killed_at[str(procs[victim].pid)] = time.time() * 1000
            procs[victim].wait()
            procs[victim] = spawn_worker(url, queue, name=f"w{victim}-{k}", env=env)
        started = time.monotonic()
        while (await app.stats(queue)).totals.get("completed", 0) < jobs:
            if time.monotonic() - started > 600:
                raise SystemExit("the backlog did not drain in 10 minutes")
            await asyncio.sleep(0.5)
        requeue: list[float] = []
        rerun: list[float] = []
        pending: dict[str, float] = {}  # job -> kill time
        begin = "-"
        while page := await app.redis.xrange(_keys.events(queue), min=begin, count=10_000):
            for eid, f in page:
                at = int(eid.split(b"-")[0])
                job = f[b"j"].decode()
                if f[b"t"] == b"reclaimed":
                    pid = f.get(b"w", b"").decode().split(":")[1:2]
                    if pid and pid[0] in killed_at:
                        pending[job] = killed_at[pid[0]]
                        requeue.append(at - pending[job])
                elif f[b"t"] == b"active" and job in pending:
                    rerun.append(at - pending.pop(job))
            begin = "(" + page[-1][0].decode()
    finally:
        for p in procs:
            stop(p)
        await app.close()
        server.terminate()
        server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
    print(
        f"streamq crash benchmark: {jobs:,} jobs, {workers} worker processes, {kills} SIGKILLs, "
        f"lease {lease:g} s (command: .venv/bin/python tests/benchmarks/bench_crash.py "
        f"--jobs {jobs} --workers {workers} --kills {kills} --lease {lease:g})"
    )
    print(f"  jobs taken back from killed workers: {len(rerun)}")
    for label, values in (("kill -> requeue", requeue), ("kill -> re-run", rerun)):
        if values:
            print(
                f"  {label:16} ms: p50 {statistics.median(values):,.0f}, "
                f"p99 {_pct(values, 0.99):,.0f}, max {max(values):,.0f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--lease", type=float, default=2.0)
    options = parser.parse_args()
    asyncio.run(main(options.jobs, options.workers, options.kills, options.lease))
