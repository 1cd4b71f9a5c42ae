"""Durability: Redis killed and restarted under load loses no acknowledged job; memory returns
to its idle baseline after a long run; durable enqueue waits for the AOF."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import msgspec
import pytest
import redis
import redis.asyncio as aioredis

import streamq
from streamq import App, Context, EnqueueRequest
from streamq._codec import decode_spec
from streamq._embedded import free_port, start_server
from tests.streamq.procs import spawn_worker, stop

pytestmark = pytest.mark.slow


async def test_redis_killed_five_times_loses_no_acknowledged_job(uniq) -> None:
    """AOF `always`: every enqueue that returned survives SIGKILL of the server."""
    directory = Path(tempfile.mkdtemp(prefix="streamq-kill-"))
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = start_server(directory, port, appendfsync="always")
    queue = uniq("q")
    app = App("producer", redis_url=url)

    # The handler itself talks to Redis, so it may fail while Redis is down: it retries.
    @app.task("work", queue=queue, lease=1.0, max_attempts=20, backoff=0.2)
    async def work(ctx: Context, tag: str) -> str:
        raise AssertionError  # runs in the worker subprocesses

    acknowledged: list[str] = []
    refused = 0
    stop_producing = asyncio.Event()

    async def produce() -> None:
        nonlocal refused
        i = 0
        while not stop_producing.is_set():
            job = f"j-{i}"
            try:
                await app.enqueue("work", "x", id=job)
                acknowledged.append(job)
                i += 1
            except streamq.BrokerUnavailable:
                refused += 1  # not acknowledged: the producer tries the same id again
                await asyncio.sleep(0.05)

    workers = [spawn_worker(url, queue, name=f"w{i}", concurrency=10) for i in range(2)]
    producer = asyncio.create_task(produce())
    try:
        for _ in range(5):
            await asyncio.sleep(0.8)
            server.send_signal(signal.SIGKILL)
            server.wait()
            await asyncio.sleep(0.3)
            server = start_server(directory, port, appendfsync="always")
        await asyncio.sleep(0.8)
        stop_producing.set()
        await producer
        deadline = time.monotonic() + 90
        while True:
            pipe = app.redis.pipeline(transaction=False)
            for j in acknowledged:
                pipe.hget(streamq._keys.job(queue, j), "state")
            states = [s.decode() if s else None for s in await pipe.execute()]
            if all(s == "completed" for s in states):
                break
            if time.monotonic() > deadline:
                dead = await app.dead_letters(queue, count=5)
                raise AssertionError(({s: states.count(s) for s in set(states)}, dead))
            await asyncio.sleep(0.5)
        print(
            f"\n{len(acknowledged)} acknowledged enqueues across 5 Redis kills "
            f"({refused} refused while it was down): all completed"
        )
        assert len(acknowledged) > 100
        assert all(w.poll() is None for w in workers)  # they reconnected on their own
    finally:
        stop_producing.set()
        with contextlib.suppress(Exception):
            await producer
        for w in workers:
            stop(w)
        await app.close()
        server.terminate()
        server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.xfail(
    reason="known failure: the scripts' kept replies (30 s) are counted against the baseline (open in issue 16)",
    strict=False,
)
async def test_memory_returns_to_baseline_after_100k_jobs(uniq) -> None:
    directory = Path(tempfile.mkdtemp(prefix="streamq-mem-"))
    port = free_port()
    server = start_server(directory, port)
    url = f"redis://127.0.0.1:{port}/0"
    queue = uniq("q")
    app = App("mem", redis_url=url, result_ttl=1.0, events_maxlen=1000)
    client = aioredis.Redis.from_url(url)

    @app.task("noop", queue=queue)
    async def noop(ctx: Context, n: int) -> None:
        return None

    try:
        worker = streamq.Worker(app, concurrency=200)
        await app.connect()
        await worker._prepare()
        await app.enqueue("noop", 0)  # streams, groups and events exist in the baseline too
        task = asyncio.create_task(worker.run())
        while (await app.stats(queue)).totals.get("completed", 0) < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.5)
        baseline = (await client.info("memory"))["used_memory"]
        n = 100_000
        for start in range(0, n, 2000):
            await app.enqueue_many(
                [EnqueueRequest(name="noop", payload=i) for i in range(start, start + 2000)]
            )
            while (await app.stats(queue)).waiting > 20_000:
                await asyncio.sleep(0.05)
        while (await app.stats(queue)).totals.get("completed", 0) < n + 1:
            await asyncio.sleep(0.1)
        peak = (await client.info("memory"))["used_memory"]
        deadline = time.monotonic() + 60
        while await client.dbsize() > 10:  # finished records expire after result_ttl
            assert time.monotonic() < deadline, await client.dbsize()
            await asyncio.sleep(0.5)
        after = (await client.info("memory"))["used_memory"]
        worker.stop()
        await task
        print(
            f"\nused_memory: idle baseline {baseline:,} B, during {peak:,} B, "
            f"after 100,000 jobs {after:,} B ({after - baseline:+,} B); keys {await client.dbsize()}"
        )
        assert after - baseline < 512 * 1024
    finally:
        await client.aclose()
        await app.close()
        server.terminate()
        server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


async def test_durable_enqueue_waits_for_aof(app_factory, queue, redis_url) -> None:
    """WAITAOF where the server has it (Valkey); Redis 7.0 has none and still enqueues."""
    app = app_factory()

    @app.task("t", queue=queue)
    async def t(ctx: Context, x: int) -> int:
        return x

    await app.connect()
    server = await app.redis.info("server")
    version = tuple(int(p) for p in str(server["redis_version"]).split(".")[:2])
    has_waitaof = "valkey_version" in server or version >= (7, 2)  # WAITAOF came in 7.2

    async def waitaof_calls() -> int:
        stats = await app.redis.info("commandstats")
        return int(stats.get("cmdstat_waitaof", {}).get("calls", 0))

    before = await waitaof_calls()
    h = await app.enqueue("t", 1, durable=True)
    assert await h.state() == "queued"
    assert await waitaof_calls() - before == (1 if has_waitaof else 0)


async def test_worker_consumer_is_listed_in_the_lane_groups(app_factory, queue, run_worker) -> None:
    app = app_factory()

    @app.task("t", queue=queue)
    async def t(ctx: Context, x: int) -> int:
        return x

    async with run_worker(app) as worker:
        assert await (await app.enqueue("t", 5)).result(timeout=5) == 5
        consumers = await app.redis.xinfo_consumers(streamq._keys.lane(queue, "normal"), "workers")
        assert worker.consumer.encode() in [c["name"] for c in consumers]


async def test_departed_workers_consumers_are_pruned_from_the_groups(
    app_factory, queue, run_worker
) -> None:
    app = app_factory()

    @app.task("t", queue=queue)
    async def t(ctx: Context, x: int) -> int:
        return x

    async with run_worker(app) as gone:
        assert await (await app.enqueue("t", 1)).result(timeout=5) == 1
    key = streamq._keys.lane(queue, "normal")
    # A consumer that still holds an entry must survive, however idle.
    await app.redis.xreadgroup("workers", "holder", {key: ">"}, count=1)
    await app.enqueue("t", 2)
    await app.redis.xreadgroup("workers", "holder", {key: ">"}, count=1)
    async with run_worker(app, concurrency=1) as live:
        reclaimer = streamq._leases.Reclaimer(live.broker, live.consumer, queue, 30.0)
        reclaimer.prune_idle_ms = 0
        await asyncio.sleep(0.01)
        assert await reclaimer.prune_consumers() >= 1
        names = {c["name"] for c in await app.redis.xinfo_consumers(key, "workers")}
        assert gone.consumer.encode() not in names and b"holder" in names


def _start_own_server(kind: str, directory: Path, port: int) -> subprocess.Popen[bytes]:
    """A server of our own (never the shared ones: this one gets SIGKILLed), AOF always."""
    if kind == "valkey9":
        return start_server(directory, port, appendfsync="always")
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server on this machine")
    directory.mkdir(parents=True, exist_ok=True)
    args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    args += ["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", "x.log"]
    proc = subprocess.Popen(
        [binary, *args],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                if client.ping():
                    return proc
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["valkey9", "redis7"])
async def test_enqueue_with_unknown_outcome_retried_with_its_id_exists_once(uniq, kind) -> None:
    """Redis SIGKILLed under producers that let enqueue generate ids: an enqueue that raised
    EnqueueOutcomeUnknown, retried with the id it names, yields exactly one job."""
    directory = Path(tempfile.mkdtemp(prefix="streamq-unknown-"))
    port = free_port()
    server = _start_own_server(kind, directory, port)
    queue = uniq("q")
    app = App("producer", redis_url=f"redis://127.0.0.1:{port}/0")

    @app.task("work", queue=queue)
    async def work(ctx: Context, tag: str) -> None:
        return None

    acknowledged: dict[str, str] = {}  # tag -> job id
    unknown = 0
    stop_producing = asyncio.Event()

    async def produce(p: int) -> None:
        nonlocal unknown
        i = 0
        while not stop_producing.is_set():
            tag, job_id = f"p{p}-{i}", None
            while True:
                try:
                    h = await app.enqueue("work", tag, id=job_id)
                    break
                except streamq.EnqueueOutcomeUnknown as exc:
                    unknown += 1
                    job_id = exc.job_id  # it may exist: the same id cannot add it twice
                except streamq.BrokerUnavailable:
                    pass  # Redis answered with an error: nothing was written
                await asyncio.sleep(0.02)
            assert h.deduplicated is False or job_id is not None
            acknowledged[tag] = h.id
            i += 1

    producers = [asyncio.create_task(produce(p)) for p in range(8)]
    try:
        for _ in range(5):
            await asyncio.sleep(0.6)
            server.send_signal(signal.SIGKILL)
            server.wait()
            await asyncio.sleep(0.3)
            server = _start_own_server(kind, directory, port)
        await asyncio.sleep(0.5)
        stop_producing.set()
        await asyncio.gather(*producers)
        tags: dict[str, list[str]] = {}
        async for key in app.redis.scan_iter(match=f"sq:{{{queue}}}:job:*", count=1000):
            spec = decode_spec(await app.redis.hget(key, "spec"))
            tag = msgspec.msgpack.decode(spec.payload)
            tags.setdefault(tag, []).append(key.decode().rsplit(":", 1)[1])
        print(
            f"\n[{kind}] {len(acknowledged)} enqueues across 5 Redis kills, "
            f"{unknown} outcome-unknown retried with their id"
        )
        assert unknown > 0, "no enqueue met a kill: the test proved nothing"
        doubled = {t: ids for t, ids in tags.items() if len(ids) > 1}
        assert not doubled
        assert {t: ids[0] for t, ids in tags.items() if t in acknowledged} == acknowledged
    finally:
        stop_producing.set()
        for task in producers:
            task.cancel()
        await asyncio.gather(*producers, return_exceptions=True)
        await app.close()
        server.terminate()
        server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.xfail(
    reason="known failure on a loaded machine: the worker's start-up wait races the test's server start (open in issue 16)",
    strict=False,
)
async def test_a_worker_started_while_redis_is_down_waits_for_it(uniq, caplog) -> None:
    directory = Path(tempfile.mkdtemp(prefix="streamq-late-"))
    port = free_port()
    queue = uniq("q")
    app = App("late", redis_url=f"redis://127.0.0.1:{port}/0")

    @app.task("t", queue=queue)
    async def t(ctx: Context, x: int) -> int:
        return x * 2

    worker = streamq.Worker(app)
    task = asyncio.create_task(worker.run())
    server = None
    try:
        await asyncio.sleep(1.5)
        assert not task.done(), task.exception() if task.done() else None
        server = start_server(directory, port)
        h = await app.enqueue("t", 21)
        assert await h.result(timeout=15) == 42
        waits = [r for r in caplog.records if "waiting for it" in r.getMessage()]
        assert len(waits) == 1  # one line per change of state, not one per try
        assert any("Redis is back" in r.getMessage() for r in caplog.records)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        await app.close()
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
