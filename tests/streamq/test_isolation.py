"""Handlers with ``isolation="process"``: killed and replaced on timeout and cancel; a crash of
their subprocess is a failed attempt; progress and results flow back."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from streamq import App, Backoff, ConfigurationError, Context, JobFailed
from tests.streamq import isolated_tasks as tasks
from tests.streamq.isolated_tasks import Marker


async def until(check: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child not yet reaped is a zombie: it runs no code any more.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # reaped meanwhile
        return False
    return not stat.split(") ")[1].startswith("Z")


async def pid_of(path: Path) -> int:
    await until(lambda: path.exists() and path.read_text())
    return int(await anyio.Path(path).read_text())


def quick_task(app: App, queue: str) -> None:
    app.task("plain", queue=queue, isolation="process")(tasks.plain)


async def test_a_timed_out_handler_is_killed_and_the_attempt_counted(
    app_factory, queue, run_worker, tmp_path
) -> None:
    app = app_factory()
    app.task(
        "stuck",
        queue=queue,
        isolation="process",
        timeout=1,
        max_attempts=2,
        backoff=Backoff.fixed(0.1),
    )(tasks.stuck)
    quick_task(app, queue)
    async with run_worker(app, concurrency=1, processes=1):
        h = await app.enqueue("stuck", Marker(dir=str(tmp_path)))
        for attempt in (1, 2):
            pid = await pid_of(tmp_path / f"{attempt}.pid")
            started = time.monotonic()
            await until(lambda pid=pid: not alive(pid), timeout=10)
            # Killed within 2 s of its 1 s timeout (measured from when the handler ran).
            took = time.monotonic() - started
            print(f"attempt {attempt}: handler started -> subprocess gone in {took:.2f} s")
            assert took < 1 + 2
        with pytest.raises(JobFailed, match="timed out after 1 s"):
            await h.result(timeout=10)
        job = await h.info()
        assert job is not None and job.state == "dead" and job.attempt == 2
        assert job.reason == "max_attempts"
        # The next job runs, in a fresh subprocess.
        after = await app.enqueue("plain", Marker(dir=str(tmp_path)))
        result = await after.result(timeout=20)
        assert result["pid"] not in (os.getpid(), pid)


async def test_a_cancelled_handler_is_killed(app_factory, queue, run_worker, tmp_path) -> None:
    app = app_factory()
    app.task("stuck", queue=queue, isolation="process")(tasks.stuck)
    quick_task(app, queue)
    async with run_worker(app, concurrency=1, processes=1, renew_interval=0.1):
        h = await app.enqueue("stuck", Marker(dir=str(tmp_path)))
        pid = await pid_of(tmp_path / "1.pid")
        assert await h.cancel()
        started = time.monotonic()
        await until(lambda: not alive(pid), timeout=10)
        took = time.monotonic() - started
        print(f"cancel requested -> subprocess gone in {took:.2f} s")
        assert took < 2
        await until(lambda: _state(h, "cancelled"))
        after = await app.enqueue("plain", Marker(dir=str(tmp_path)))
        assert (await after.result(timeout=20))["attempt"] == 1


async def _state(h: object, state: str) -> bool:
    job = await h.info()  # type: ignore[attr-defined]
    return job is not None and job.state == state


async def test_a_crashed_subprocess_is_a_failed_attempt(
    app_factory, queue, run_worker, tmp_path
) -> None:
    app = app_factory()
    app.task("crash", queue=queue, isolation="process", max_attempts=2, backoff=Backoff.fixed(0.1))(
        tasks.crash
    )
    quick_task(app, queue)
    async with run_worker(app, concurrency=1, processes=1):
        h = await app.enqueue("crash", Marker(dir=str(tmp_path)))
        with pytest.raises(JobFailed, match=r"subprocess died \(exit code 3\)"):
            await h.result(timeout=30)
        job = await h.info()
        assert job is not None and job.state == "dead" and job.attempt == 2
        assert job.reason == "max_attempts" and job.deliveries == 2
        after = await app.enqueue("plain", Marker(dir=str(tmp_path)))
        assert (await after.result(timeout=20))["attempt"] == 1


async def test_progress_and_results_flow_back(app_factory, queue, run_worker, tmp_path) -> None:
    app = app_factory()
    app.task("reporting", queue=queue, isolation="process")(tasks.reporting)
    quick_task(app, queue)
    async with run_worker(app, concurrency=2, processes=2):
        h = await app.enqueue("reporting", Marker(dir=str(tmp_path)))
        p = await app.enqueue("plain", Marker(dir=str(tmp_path)))
        result = await h.result(timeout=20)
        assert result["attempt"] == 1 and result["pid"] != os.getpid()
        assert (await p.result(timeout=20))["pid"] != os.getpid()
        events = await app.read_events(queue, count=1000)
    progress = {(e.job, e.progress, e.message) for e in events if e.type == "progress"}
    assert (h.id, 50.0, "half way") in progress
    assert (p.id, 25.0, "a quarter") in progress
    log = await app.job_logs(queue, h.id)
    assert log is not None and [ln.message for ln in log.lines] == ["from a subprocess"]
    assert log.lines[0].fields["pid"] == result["pid"]
    assert log.lines[0].fields["odd"].startswith("<object object")  # kept as its repr
    plain_log = await app.job_logs(queue, p.id)
    assert plain_log is not None and [ln.message for ln in plain_log.lines] == ["plain too"]


async def test_a_process_handler_must_be_module_level(app_factory, queue) -> None:
    app = app_factory()

    def nested(ctx: Context, x: int) -> int:
        return x

    with pytest.raises(ConfigurationError, match="module-level"):
        app.task("nested", queue=queue, isolation="process")(nested)
    with pytest.raises(ConfigurationError, match="isolation"):
        app.task("odd", queue=queue, isolation="fork")(tasks.plain)  # type: ignore[arg-type]
