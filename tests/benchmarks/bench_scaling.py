"""Worker-process scaling: how fast 1, 2, 4 worker processes (``streamq worker --processes N``)
drain a backlog of no-op jobs, and what each job costs Redis and the workers.

    .venv/bin/python tests/benchmarks/bench_scaling.py [--jobs 20000] [--processes 1,2,4]
        [--concurrency 100] [--repeat 1] [--server redis|valkey] [--cluster]

For each N: the backlog is enqueued into a paused queue (batches of 1,000), the supervisor
starts N worker processes, and once all N have registered the queue is resumed; the drain
ends when the queue's completed count reaches the backlog. Printed per run: jobs/s, Redis CPU
per job for the enqueue and for the drain (``INFO cpu`` deltas, the idle workers' own polling
subtracted), commands per job (``INFO commandstats``), worker CPU per job (the processes'
utime + stime from /proc over the drain), and the CPU share of the workers and of Redis during
the drain (1.0 = one core busy). Then what one Redis core carries at these costs. First, the
Redis CPU per job of enqueueing one call at a time (``--single-enqueues``), for comparison with
the batched enqueue of the drain runs.

Single server: its own ``redis-server`` with persistence off (``--server redis``, default), or
the embedded Valkey with AOF everysec (``--server valkey``). ``--cluster``: the 3-shard recipe
of ops/cluster (Valkey, AOF everysec), three queues whose hash tags fall on the three shards,
every worker process serving all three; Redis CPU is per shard.

Starts and stops its own servers (never a shared one). Not a test: nothing here asserts on
time. The figures go in docs/scaling.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import redis
from redis.crc import key_slot

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from streamq import App, EnqueueRequest  # noqa: E402
from streamq._embedded import free_port  # noqa: E402
from streamq.cli._bench import Server  # noqa: E402

WORKER_APP = "tests.benchmarks.scaling_app:app"
CLUSTER = ROOT / "ops" / "cluster"
TICK = os.sysconf("SC_CLK_TCK")


def redis_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_calls(r: redis.Redis) -> int:
    return sum(int(v["calls"]) for v in r.info("commandstats").values())


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue
            if int(ppid) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class Target:
    """Where the jobs go: a Redis URL, a client per server (shard) and, on a cluster, the
    shards' ports (a fresh queue per shard for each run)."""

    url: str
    nodes: list[redis.Redis]
    label: str
    shard_ports: list[int] | None = None

    def fresh_queues(self) -> list[str]:
        base = f"scale-{time.time_ns()}"
        return [base] if self.shard_ports is None else queues_on_shards(self.shard_ports, base)

    def cpu(self) -> list[float]:
        return [redis_cpu(r) for r in self.nodes]

    def calls(self) -> int:
        return sum(redis_calls(r) for r in self.nodes)


@dataclass
class Drain:
    processes: int
    rate: float
    enqueue_cpu_us: float
    drain_cpu_us: float
    commands_per_job: float
    worker_cpu_us: float
    redis_share: list[float]  # per server: CPU seconds per second of the drain


def app_for(url: str, queues: list[str]) -> App:
    app = App("bench-scaling", redis_url=url, result_ttl=60.0)

    async def noop(ctx: object, n: int) -> None:
        return None

    for i, queue in enumerate(queues):
        app.task(f"noop-{i}", queue=queue)(noop)
    return app


async def completed(app: App, queues: list[str]) -> int:
    return sum([(await app.stats(q)).totals.get("completed", 0) for q in queues])


def spawn_workers(url: str, queues: list[str], processes: int, concurrency: int) -> Popen[bytes]:
    """``streamq worker --processes N`` on ``queues`` (the supervisor, or the one worker)."""
    env = {**os.environ, "STREAMQ_REDIS_URL": url, "BENCH_QUEUES": ",".join(queues)}
    env["PYTHONPATH"] = str(ROOT)
    argv = ["--log-level", "ERROR", "worker", WORKER_APP, "--processes", str(processes)]
    argv += ["--concurrency", str(concurrency), "--metrics-port", "0"]
    return subprocess.Popen([sys.executable, "-m", "streamq.cli", *argv], env=env, cwd=ROOT)


async def drain(target: Target, jobs: int, processes: int, concurrency: int) -> Drain:
    queues = target.fresh_queues()
    app = app_for(target.url, queues)
    await app.connect()
    for queue in queues:
        await app.pause(queue)
    cpu0 = sum(target.cpu())
    per_queue = jobs // len(queues)
    for i, _ in enumerate(queues):
        for start in range(0, per_queue, 1000):
            await app.enqueue_many(
                [
                    EnqueueRequest(name=f"noop-{i}", payload=n)
                    for n in range(start, min(start + 1000, per_queue))
                ]
            )
    total = per_queue * len(queues)
    enqueue_cpu = sum(target.cpu()) - cpu0
    worker = spawn_workers(target.url, queues, processes, concurrency)
    try:
        while min([(await app.stats(q)).workers for q in queues]) < processes:
            await asyncio.sleep(0.05)
        pids = [worker.pid, *(children_of(worker.pid) if processes > 1 else [])]
        await asyncio.sleep(0.5)  # past start-up
        idle0, idle_calls0, t_idle = target.cpu(), target.calls(), time.perf_counter()
        await asyncio.sleep(1.0)  # the idle workers' own polling, to subtract
        idle_s = time.perf_counter() - t_idle
        idle = [(b - a) / idle_s for a, b in zip(idle0, target.cpu(), strict=True)]
        idle_calls = (target.calls() - idle_calls0) / idle_s
        cpu1, calls1, wcpu1 = target.cpu(), target.calls(), process_cpu(pids)
        t0 = time.perf_counter()
        for queue in queues:
            await app.resume(queue)
        while await completed(app, queues) < total:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        cpu2, calls2, wcpu2 = target.cpu(), target.calls(), process_cpu(pids)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        await app.close()
    busy = [(b - a) - i * elapsed for a, b, i in zip(cpu1, cpu2, idle, strict=True)]
    return Drain(
        processes=processes,
        rate=total / elapsed,
        enqueue_cpu_us=enqueue_cpu / total * 1e6,
        drain_cpu_us=sum(busy) / total * 1e6,
        commands_per_job=((calls2 - calls1) - idle_calls * elapsed) / total,
        worker_cpu_us=(wcpu2 - wcpu1) / total * 1e6,
        redis_share=[b / elapsed for b in busy],
    )


async def single_enqueue_cost(target: Target, jobs: int) -> tuple[float, float]:
    """(jobs/s, Redis CPU us per job) of ``jobs`` enqueues one ``enqueue`` call at a time."""
    queues = target.fresh_queues()
    app = app_for(target.url, queues)
    await app.connect()
    try:
        cpu0, t0 = sum(target.cpu()), time.perf_counter()
        for n in range(jobs):
            await app.enqueue(f"noop-{n % len(queues)}", n)
        elapsed, cpu = time.perf_counter() - t0, sum(target.cpu()) - cpu0
    finally:
        await app.close()
    return jobs / elapsed, cpu / jobs * 1e6


def queues_on_shards(ports: list[int], base: str) -> list[str]:
    """One queue name per shard (``base-N``): its hash tag, the name, hashes into that shard's
    slots."""
    slots = redis.Redis(port=ports[0]).execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
    owner = {int(row[2][1]): (int(row[0]), int(row[1])) for row in slots}
    names = []
    for port in ports:
        low, high = owner[port]
        n = 0
        while not low <= key_slot(f"{base}-{n}".encode()) <= high:
            n += 1
        names.append(f"{base}-{n}")
    return names


def start_cluster(directory: Path) -> list[int]:
    ports = [free_port() for _ in range(3)]
    bus = [free_port() for _ in range(3)]
    env = {**os.environ, "STREAMQ_CLUSTER_BUS_PORTS": ",".join(map(str, bus))}
    subprocess.run(
        [str(CLUSTER / "start.sh"), str(directory), *map(str, ports)],
        check=True,
        env=env,
        timeout=120,
        capture_output=True,
    )
    return ports


def stop_cluster(directory: Path) -> None:
    subprocess.run([str(CLUSTER / "stop.sh"), str(directory)], timeout=60, check=False)
    shutil.rmtree(directory, ignore_errors=True)


def median_run(runs: list[Drain]) -> Drain:
    return sorted(runs, key=lambda d: d.rate)[len(runs) // 2]


def report(label: str, runs: list[list[Drain]]) -> None:
    print(f"\n[{label}]")
    print(
        "  procs   jobs/s  speed-up  Redis us/job (enq + drain)  cmds/job  "
        "worker us/job  workers busy  Redis busy (cores)"
    )
    base: float | None = None
    for same_n in runs:
        mid = median_run(same_n)
        base = base or mid.rate
        shares = " + ".join(f"{s:.2f}" for s in mid.redis_share)
        rates = ", ".join(f"{d.rate:,.0f}" for d in same_n)
        print(
            f"  {mid.processes:>5} {mid.rate:>8,.0f} {mid.rate / base:>8.2f}x  "
            f"{mid.enqueue_cpu_us:>8.1f} + {mid.drain_cpu_us:>6.1f} = "
            f"{mid.enqueue_cpu_us + mid.drain_cpu_us:>6.1f}      {mid.commands_per_job:>6.2f}  "
            f"{mid.worker_cpu_us:>12.0f}  {mid.worker_cpu_us * mid.rate / 1e6:>12.2f}  {shares}"
            + (f"   (runs: {rates})" if len(same_n) > 1 else "")
        )
    first = median_run(runs[0])
    per_job = first.enqueue_cpu_us + first.drain_cpu_us
    shards = len(first.redis_share)
    print(
        f"  one Redis core at {per_job:.0f} us per job (enqueue + drain) carries "
        f"~{1e6 / per_job:,.0f} jobs/s"
        + (f" per shard, ~{shards * 1e6 / per_job:,.0f} jobs/s for {shards}" if shards > 1 else "")
        + f"; one worker process drained {first.rate:,.0f} jobs/s here, at "
        f"{first.worker_cpu_us:.0f} us of worker CPU per job: ~{1e6 / first.worker_cpu_us:,.0f} "
        "jobs/s with a core of its own"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--processes", default="1,2,4", help="comma list of N")
    parser.add_argument("--concurrency", type=int, default=100, help="per worker process")
    parser.add_argument("--repeat", type=int, default=1, help="runs per N (the median shown)")
    parser.add_argument("--server", choices=["redis", "valkey"], default="redis")
    parser.add_argument("--cluster", action="store_true", help="the 3-shard ops/cluster recipe")
    parser.add_argument(
        "--single-enqueues",
        type=int,
        default=2000,
        help="jobs enqueued one call each first, for their Redis cost (0: skip)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    command = "python tests/benchmarks/bench_scaling.py " + " ".join(sys.argv[1:])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"streamq worker-process scaling: {args.jobs:,} no-op jobs, concurrency "
        f"{args.concurrency} per process; {os.cpu_count()} cores, load average {load} at the "
        f"start; python {sys.version.split()[0]}\n  command: {command.strip()}"
    )
    if args.cluster:
        directory = Path(tempfile.mkdtemp(prefix="streamq-bench-cluster-"))
        ports = start_cluster(directory)
        nodes = [redis.Redis(port=p) for p in ports]
        version = nodes[0].info("server").get("valkey_version", "?")
        target = Target(
            "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports),
            nodes,
            f"3-shard Valkey {version} cluster (ops/cluster, AOF everysec), one queue per shard",
            shard_ports=ports,
        )
    else:
        server = Server(args.server)
        persistence = "AOF everysec" if args.server == "valkey" else "persistence off"
        target = Target(server.url, [server.r], f"{args.server} {server.version}, {persistence}")
    try:
        if args.single_enqueues:
            rate, cost = await single_enqueue_cost(target, args.single_enqueues)
            print(
                f"  enqueue one by one ({args.single_enqueues:,} jobs, one producer): "
                f"{rate:,.0f} jobs/s, Redis CPU {cost:.1f} us/job",
                flush=True,
            )
        runs = []
        for n in counts:
            same_n = []
            for _ in range(args.repeat):
                d = await drain(target, args.jobs, n, args.concurrency)
                print(f"  ({n} process(es): {d.rate:,.0f} jobs/s)", flush=True)
                same_n.append(d)
            runs.append(same_n)
        report(target.label, runs)
    finally:
        for node in target.nodes:
            node.close()
        if args.cluster:
            stop_cluster(directory)
        else:
            server.close()
    print(f"  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
