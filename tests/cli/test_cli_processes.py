"""``streamq worker --processes N`` as an operator runs it: N worker processes that all take
jobs, one killed outright comes back and loses no job, SIGTERM drains them all and exits 0,
and a bad N is a one-line usage error. Each test uses a fresh database of the session's own
embedded Valkey (``streamq_redis_url``)."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path

import pytest
from cli_support import ROOT, assert_one_line_error, cli, cli_env

from streamq import App, Context
from streamq._embedded import free_port
from streamq.cli._supervise import RESTART_MAX_S, RESTART_MIN_S, restart_delay

APP = "tests.cli.procs_app:app"
DEADLINE_S = 90.0  # generous: a loaded 2-core machine starts Python processes slowly


def children_of(pid: int) -> set[int]:
    """The live (not zombie) child processes of ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


@contextmanager
def supervisor(
    url: str, queue: str, log: Path, n: int = 2, *extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``streamq worker APP --processes n``; its output (and its children's) goes to ``log``.
    Killed with its children if the test leaves it running."""
    argv = ["worker", APP, "--processes", str(n), "--concurrency", "2", "--grace", "20"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamq.cli", *argv, *extra],
            cwd=ROOT,
            env=cli_env(STREAMQ_REDIS_URL=url, CLI_TEST_QUEUE=queue),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            children = children_of(proc.pid)
            proc.kill()
            proc.wait()
            for pid in children:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@asynccontextmanager
async def producer(url: str, queue: str) -> AsyncIterator[App]:
    app = App("procs-producer", redis_url=url)

    @app.task("whoami", queue=queue)
    async def whoami(ctx: Context, seconds: float) -> int:
        raise NotImplementedError  # declared for enqueue; the worker processes run it

    async with app:
        yield app


async def wait_workers(app: App, queue: str, n: int, log: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while (await app.stats(queue)).workers < n:
        if time.monotonic() > deadline:
            output = await asyncio.to_thread(log.read_text)
            raise AssertionError(f"fewer than {n} workers registered\n{output}")
        await asyncio.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(DEADLINE_S)
    except subprocess.TimeoutExpired:
        output = log.read_text()
        raise AssertionError(f"no exit within {DEADLINE_S:.0f} s of SIGTERM\n{output}") from None


def consecutive_free_ports(n: int) -> int:
    """A port p with p .. p+n-1 free now."""
    import socket

    for _ in range(50):
        first = free_port()
        with suppress(OSError):
            socks = []
            try:
                for port in range(first, first + n):
                    s = socket.socket()
                    socks.append(s)
                    s.bind(("127.0.0.1", port))
                return first
            finally:
                for s in socks:
                    s.close()
    raise AssertionError("no run of free ports")


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


async def test_two_processes_both_take_jobs_and_serve_metrics(
    streamq_redis_url: str, tmp_path: Path
) -> None:
    queue, log, port = "procs-both", tmp_path / "worker.log", consecutive_free_ports(2)
    with supervisor(streamq_redis_url, queue, log, 2, "--metrics-port", str(port)) as proc:
        async with producer(streamq_redis_url, queue) as app:
            await wait_workers(app, queue, 2, log)
            workers = children_of(proc.pid)
            assert len(workers) == 2, log.read_text()
            # 2 jobs at once per process, 0.2 s each: one process alone cannot hold them all.
            handles = [await app.enqueue("whoami", 0.2) for _ in range(20)]
            pids = {await h.result(timeout=DEADLINE_S) for h in handles}
            assert pids == workers
            counts = []
            for p in (port, port + 1):
                text = await asyncio.to_thread(metrics_text, p)
                (line,) = [
                    ln
                    for ln in text.splitlines()
                    if ln.startswith("streamq_jobs_completed_total{") and queue in ln
                ]
                counts.append(float(line.rsplit(" ", 1)[1]))
            assert sum(counts) == 20 and all(c > 0 for c in counts)
        assert await asyncio.to_thread(stop, proc, log) == 0, log.read_text()
    assert not any(alive(pid) for pid in workers)


async def test_a_killed_process_is_restarted_and_no_job_is_lost(
    streamq_redis_url: str, tmp_path: Path
) -> None:
    queue, log = "procs-kill", tmp_path / "worker.log"
    with supervisor(streamq_redis_url, queue, log, 2, "--metrics-port", "0") as proc:
        async with producer(streamq_redis_url, queue) as app:
            await wait_workers(app, queue, 2, log)
            first = children_of(proc.pid)
            handles = [await app.enqueue("whoami", 0.3) for _ in range(30)]
            deadline = time.monotonic() + DEADLINE_S
            while (await app.stats(queue)).active < 4:  # both processes hold jobs
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.05)
            victim = min(first)
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + DEADLINE_S
            while len(children_of(proc.pid) - first) < 1:
                assert time.monotonic() < deadline, f"no restart\n{log.read_text()}"
                await asyncio.sleep(0.1)
            # Every acknowledged job completes: the killed one's come back when their lease ends.
            results = [await h.result(timeout=DEADLINE_S) for h in handles]
            assert len(results) == 30
            states = {(await app.job(queue, h.id)).state for h in handles}  # type: ignore[union-attr]
            assert states == {"completed"}
        assert await asyncio.to_thread(stop, proc, log) == 0, log.read_text()
    text = log.read_text()
    assert f"(pid {victim}) exited with code -9 (SIGKILL)" in text
    assert text.count("restarting it in") == 1


async def test_sigterm_drains_every_process_and_exits_0(
    streamq_redis_url: str, tmp_path: Path
) -> None:
    queue, log = "procs-drain", tmp_path / "worker.log"
    with supervisor(streamq_redis_url, queue, log, 2, "--metrics-port", "0") as proc:
        async with producer(streamq_redis_url, queue) as app:
            await wait_workers(app, queue, 2, log)
            workers = children_of(proc.pid)
            handles = [await app.enqueue("whoami", 2.0) for _ in range(4)]
            deadline = time.monotonic() + DEADLINE_S
            while (await app.stats(queue)).active < 4:
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.05)
            code = await asyncio.to_thread(stop, proc, log)
            assert code == 0, log.read_text()
            # The running jobs finished within --grace rather than being cut off.
            assert {await h.result(timeout=5) for h in handles} == workers
    assert not any(alive(pid) for pid in workers)
    assert "SIGTERM: draining 2 worker processes" in log.read_text()


async def test_a_second_signal_kills_what_is_still_draining(
    streamq_redis_url: str, tmp_path: Path
) -> None:
    queue, log = "procs-second", tmp_path / "worker.log"
    # A job longer than any wait here, and a grace that would let it run on.
    with supervisor(
        streamq_redis_url, queue, log, 2, "--metrics-port", "0", "--grace", "600"
    ) as proc:
        async with producer(streamq_redis_url, queue) as app:
            await wait_workers(app, queue, 2, log)
            workers = children_of(proc.pid)
            handle = await app.enqueue("whoami", 600.0)
            deadline = time.monotonic() + DEADLINE_S
            while (await app.stats(queue)).active < 1:
                assert time.monotonic() < deadline, await asyncio.to_thread(log.read_text)
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            # The second signal only once the first was taken (two pending ones would merge).
            deadline = time.monotonic() + DEADLINE_S
            while "SIGTERM: draining" not in await asyncio.to_thread(log.read_text):
                assert time.monotonic() < deadline, await asyncio.to_thread(log.read_text)
                await asyncio.sleep(0.05)
            code = await asyncio.to_thread(stop, proc, log)
            job = await app.job(queue, handle.id)
    assert code == 1
    last = log.read_text().strip().splitlines()[-1]
    assert last.startswith("streamq: error: worker process ")
    assert last.endswith("exited with code -9 (SIGKILL) while draining")
    assert job is not None and job.state != "completed"
    assert not any(alive(pid) for pid in workers)


@pytest.mark.parametrize("n", ["0", "-2"])
async def test_a_bad_number_of_processes_is_a_one_line_usage_error(
    n: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await cli(capsys, "worker", APP, "--processes", n)
    assert result.code == 2
    assert_one_line_error(result)
    assert f"--processes must be >= 1, not {n}" in result.err


async def test_taken_metrics_ports_are_refused_before_any_process_starts(
    capsys: pytest.CaptureFixture[str], streamq_redis_url: str
) -> None:
    import socket

    first = consecutive_free_ports(3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", first + 2))
        busy.listen()
        result = await cli(
            capsys, "worker", APP, "--processes", "3", "--metrics-port", str(first),
            "--redis-url", streamq_redis_url,
        )  # fmt: skip
    assert result.code == 1
    assert_one_line_error(result)
    assert f"127.0.0.1:{first + 2} (taken)" in result.err


def test_restarts_back_off_while_a_process_keeps_dying_young() -> None:
    delays, delay = [], 0.0
    for _ in range(10):
        delay = restart_delay(delay, lived=1.0)
        delays.append(delay)
    assert delays[0] == RESTART_MIN_S
    assert all(b == min(2 * a, RESTART_MAX_S) for a, b in itertools.pairwise(delays))
    assert delays[-1] == RESTART_MAX_S
    # One that ran a while before dying is restarted quickly again.
    assert restart_delay(RESTART_MAX_S, lived=3600.0) == RESTART_MIN_S


async def test_run_refuses_a_bad_number_of_processes(capsys: pytest.CaptureFixture[str]) -> None:
    result = await cli(capsys, "run", "--processes", "0", "--duration", "1")
    assert result.code == 2
    assert_one_line_error(result)
    assert "--processes must be >= 1, not 0" in result.err
