"""``streamq bench``: the core broker benchmark (no-op jobs, one producer, one worker process).

    make bench            (or: streamq bench [--jobs N] [--quick], from any directory)

Prints, for the embedded Valkey (AOF everysec) and a plain redis-server with persistence off:
enqueue rate (one by one, batched), processing rate of one worker process at its best
concurrency, end-to-end latency p50/p99 at a steady 1,000 jobs/s, and the Redis-side cost per
job (commands and CPU microseconds, from INFO commandstats / INFO cpu deltas). Not a test:
nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from streamq import App, EnqueueRequest, _keys
from streamq._embedded import free_port, server_binary, start_server

# The worker process runs this packaged app, so the benchmark needs no checkout.
WORKER_APP = "streamq.cli._bench_app:app"


def _cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _calls(r: redis.Redis) -> int:
    return sum(int(v["calls"]) for v in r.info("commandstats").values())


class Server:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix=f"streamq-bench-{kind}-"))
        self.port = free_port()
        if kind == "valkey":
            self.proc = start_server(self.dir, self.port)  # AOF on, appendfsync everysec
        else:
            binary = shutil.which("redis-server")
            if binary is None:
                raise FileNotFoundError("redis-server")
            self.proc = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.dir),
                ],
                stdout=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while True:
                try:
                    redis.Redis(port=self.port).ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.r = redis.Redis(port=self.port)
        self.version = (
            self.r.info("server").get("valkey_version") or self.r.info("server")["redis_version"]
        )

    def close(self) -> None:
        self.r.close()
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def worker_command(app: str, concurrency: int, *options: str) -> list[str]:
    """The command line of a worker subprocess for ``app`` that logs only errors and serves no
    metrics (``options``: more worker options)."""
    return [
        sys.executable,
        "-m",
        "streamq.cli",
        "--log-level",
        "ERROR",
        "worker",
        app,
        "--concurrency",
        str(concurrency),
        "--metrics-port",
        "0",
        *options,
    ]


def _spawn_worker(url: str, queue: str, concurrency: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, STREAMQ_REDIS_URL=url, BENCH_QUEUE=queue)
    return subprocess.Popen(worker_command(WORKER_APP, concurrency), env=env)


def _app(url: str, queue: str) -> App:
    app = App("bench", redis_url=url, result_ttl=60.0)

    @app.task("noop", queue=queue)
    async def noop(ctx: Any, n: int) -> None:
        return None

    return app


async def _wait_completed(app: App, queue: str, n: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while (await app.stats(queue)).totals.get("completed", 0) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{queue}: not all {n} jobs completed")
        await asyncio.sleep(0.01)


async def _wait_worker(app: App, queue: str) -> None:
    # The worker is another process: its heartbeat in Redis is the only thing to wait on.
    while (await app.stats(queue)).workers < 1:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)


async def enqueue_rates(server: Server, n: int) -> dict[str, float]:
    queue = f"bench-enq-{time.time_ns()}"
    app = _app(server.url, queue)
    await app.connect()
    one = min(n, 5000)
    t0 = time.perf_counter()
    for i in range(one):
        await app.enqueue("noop", i)
    single = one / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for start in range(0, n, 1000):
        await app.enqueue_many(
            [EnqueueRequest(name="noop", payload=i) for i in range(start, min(start + 1000, n))]
        )
    batched = n / (time.perf_counter() - t0)
    await app.close()
    return {"single": single, "batched": batched}


async def drain_rate(server: Server, n: int, concurrency: int) -> dict[str, float]:
    """Enqueue n (paused), start one worker process, resume, time until all completed;
    Redis CPU and command deltas cover enqueue and drain."""
    queue = f"bench-drain-{time.time_ns()}"
    app = _app(server.url, queue)
    await app.connect()
    await app.pause(queue)
    cpu0, calls0 = _cpu(server.r), _calls(server.r)
    for start in range(0, n, 1000):
        await app.enqueue_many(
            [EnqueueRequest(name="noop", payload=i) for i in range(start, min(start + 1000, n))]
        )
    cpu_enq = _cpu(server.r)
    worker = _spawn_worker(server.url, queue, concurrency)
    try:
        await _wait_worker(app, queue)
        idle_cpu, idle_calls = _cpu(server.r), _calls(server.r)
        await asyncio.sleep(1.0)  # the idle worker's own background cost, to subtract
        idle_cpu, idle_calls = _cpu(server.r) - idle_cpu, _calls(server.r) - idle_calls
        cpu1, calls1 = _cpu(server.r), _calls(server.r)
        t0 = time.perf_counter()
        await app.resume(queue)
        await _wait_completed(app, queue, n)
        elapsed = time.perf_counter() - t0
        cpu2, calls2 = _cpu(server.r), _calls(server.r)
    finally:
        worker.terminate()
        worker.wait(30)
    await app.close()
    drain_cpu = (cpu2 - cpu1) - idle_cpu * elapsed
    drain_calls = (calls2 - calls1) - idle_calls * elapsed
    return {
        "rate": n / elapsed,
        "cpu_us_per_job": ((cpu_enq - cpu0) + drain_cpu) / n * 1e6,
        "enqueue_cpu_us": (cpu_enq - cpu0) / n * 1e6,
        "drain_cpu_us": drain_cpu / n * 1e6,
        "commands_per_job": ((calls1 - calls0 - 0) + drain_calls) / n,
    }


async def latency(server: Server, rate: int, seconds: float, concurrency: int) -> dict[str, float]:
    """Enqueue one job every 1/rate s for `seconds`; latency = finished_at - created_at
    (both the server's clock, ms)."""
    queue = f"bench-lat-{time.time_ns()}"
    app = _app(server.url, queue)
    await app.connect()
    worker = _spawn_worker(server.url, queue, concurrency)
    ids: list[str] = []
    try:
        await _wait_worker(app, queue)
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            h = await app.enqueue("noop", i)
            ids.append(h.id)
        await _wait_completed(app, queue, total)
        pipe = app.redis.pipeline(transaction=False)
        for job in ids:
            pipe.hmget(_keys.job(queue, job), "created_at", "finished_at")
        rows = await pipe.execute()
    finally:
        worker.terminate()
        worker.wait(30)
    await app.close()
    lat = sorted(int(f) - int(c) for c, f in rows)
    return {
        "p50": statistics.median(lat),
        "p99": lat[int(len(lat) * 0.99) - 1],
        "max": lat[-1],
        "achieved_rate": len(ids) / seconds,
    }


async def run(jobs: int, quick: bool) -> None:
    concurrencies = [100] if quick else [50, 100, 200]
    lat_seconds = 3.0 if quick else 10.0
    print(
        f"streamq core benchmark: {jobs:,} no-op jobs; python {sys.version.split()[0]}; "
        f"{os.cpu_count()} cores; command: make bench (streamq bench --jobs {jobs}"
        f"{' --quick' if quick else ''})"
    )
    for kind in ("valkey", "redis"):
        try:
            server = Server(kind)
        except FileNotFoundError:
            print(f"\n[{kind}] skipped: no redis-server binary on PATH")
            continue
        try:
            label = (
                "embedded Valkey, AOF appendfsync everysec"
                if kind == "valkey"
                else "redis-server, persistence off"
            )
            print(
                f"\n[{kind} {server.version}] {label} ({server_binary() if kind == 'valkey' else shutil.which('redis-server')})"
            )
            enq = await enqueue_rates(server, jobs)
            print(f"  enqueue, one by one:       {enq['single']:>10,.0f} jobs/s")
            print(f"  enqueue, batched (1,000):  {enq['batched']:>10,.0f} jobs/s")
            best: dict[str, float] | None = None
            for c in concurrencies:
                d = await drain_rate(server, jobs, c)
                print(
                    f"  drain, 1 worker process, concurrency {c:>3}: {d['rate']:>8,.0f} jobs/s"
                    f"   Redis CPU {d['cpu_us_per_job']:.1f} us/job (enqueue "
                    f"{d['enqueue_cpu_us']:.1f} + drain {d['drain_cpu_us']:.1f}), "
                    f"{d['commands_per_job']:.2f} commands/job"
                )
                if best is None or d["rate"] > best["rate"]:
                    best = d | {"concurrency": c}
            assert best is not None
            print(
                f"  best processing rate: {best['rate']:,.0f} jobs/s at concurrency "
                f"{best['concurrency']:.0f}"
            )
            lat = await latency(server, 1000, lat_seconds, 100)
            print(
                f"  latency at {lat['achieved_rate']:,.0f} jobs/s for {lat_seconds:.0f} s "
                f"(enqueue -> completed, server clock, ms): p50 {lat['p50']:.1f}, "
                f"p99 {lat['p99']:.1f}, max {lat['max']:.1f}"
            )
        finally:
            server.close()


def command(args: argparse.Namespace) -> int:
    """``streamq bench --jobs N [--quick]``: prints the figures (nothing is asserted)."""
    asyncio.run(run(args.jobs, args.quick))
    return 0
