"""streamq.testing as a user meets it: a test module of their own, run by pytest in a fresh
process with nothing but the installed plugin (no conftest of this project)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from streamq import App, Context
from streamq.testing import run_until_idle

USER_TESTS = """
import msgspec
import pytest

from streamq import App, Backoff, Context, Fatal, JobFailed
from streamq.testing import fire_schedules, run_until_idle

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"  # streamq runs on asyncio (AnyIO would also try trio if installed)


class Charge(msgspec.Struct):
    order: str
    cents: int


@pytest.fixture
async def app(streamq_redis_url):
    app = App("shop", redis_url=streamq_redis_url)
    app.calls = []

    @app.task("charge", queue="payments", max_attempts=3, backoff=Backoff.exponential(60))
    async def charge(ctx: Context, req: Charge) -> str:
        app.calls.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError("the card processor is down")
        return f"charged {req.cents} for {req.order}"

    @app.task("refund", queue="payments")
    async def refund(ctx: Context, req: Charge) -> None:
        raise Fatal("refunds are closed")

    @app.task("report", queue="reports")
    async def report(ctx: Context, day: str) -> str:
        app.calls.append(day)
        return day

    yield app
    await app.close()


async def test_an_hour_delay_and_two_backoffs_take_no_time(app):
    job = await app.enqueue("charge", Charge(order="A-1", cents=500), id="A-1", delay=3600)
    assert await job.state() == "scheduled"
    await run_until_idle(app, timeout=5)
    assert await job.result(timeout=1) == "charged 500 for A-1"
    assert app.calls == [1, 2, 3]


async def test_each_test_has_its_own_keyspace(app):
    # The same id as the test above: not a duplicate here.
    job = await app.enqueue("charge", Charge(order="A-1", cents=1), id="A-1")
    assert not job.deduplicated


async def test_a_fatal_error_dead_letters_at_once(app):
    job = await app.enqueue("refund", Charge(order="A-2", cents=5))
    await run_until_idle(app, timeout=5)
    with pytest.raises(JobFailed, match="refunds are closed"):
        await job.result(timeout=1)
    assert [d.job for d in await app.dead_letters("payments")] == [job.id]


async def test_recurring_jobs_fire_when_told(app):
    app.schedule("report", "daily", every=86400)
    assert await fire_schedules(app, ticks=2) == 2
    await run_until_idle(app, timeout=5)
    assert app.calls == ["daily", "daily"]
"""


def test_a_users_test_module_passes_fast_with_only_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_shop.py").write_text(USER_TESTS)
    report = tmp_path / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMQ_", "PYTEST_"))}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            "-o",
            "junit_duration_report=call",
            f"--junitxml={report}",
            "test_shop.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout
    times = {
        str(case.get("name")).partition("[")[0]: float(case.get("time", "nan"))
        for case in ET.parse(report).getroot().iter("testcase")
    }
    # The hour's delay and the exponential backoff (60 s, then 120 s) are moved forward, not
    # slept: the whole test runs in well under two seconds of wall time.
    assert times["test_an_hour_delay_and_two_backoffs_take_no_time"] < 2.0, times
    assert sum(times.values()) < 4.0, times


async def test_run_until_idle_leaves_later_jobs_without_fast_forward(streamq_redis_url) -> None:

    app = App("harness", redis_url=streamq_redis_url)
    ran: list[int] = []

    @app.task("note", queue="notes")
    async def note(ctx: Context, x: int) -> None:
        ran.append(x)

    try:
        now = await app.enqueue("note", 1)
        later = await app.enqueue("note", 2, delay=3600)
        await run_until_idle(app, timeout=5, fast_forward=False)
        assert ran == [1]
        assert await now.state() == "completed" and await later.state() == "scheduled"
        await run_until_idle(app, timeout=5)
        assert ran == [1, 2]
    finally:
        await app.close()


async def test_run_until_idle_says_what_is_still_busy(streamq_redis_url) -> None:

    app = App("harness", redis_url=streamq_redis_url)

    @app.task("note", queue="notes")
    async def note(ctx: Context, x: int) -> None:
        pass

    try:
        await app.pause("notes")
        await app.enqueue("note", 1)
        with pytest.raises(TimeoutError, match="notes: queued or active"):
            await run_until_idle(app, timeout=0.5)
    finally:
        await app.close()


async def test_run_until_idle_waits_for_a_flow_to_finish(streamq_redis_url) -> None:
    from streamq import Flow

    app = App("harness", redis_url=streamq_redis_url)

    @app.task("part", queue="parts", max_attempts=2, backoff=600)
    async def part(ctx: Context, x: int) -> int:
        if ctx.attempt == 1:
            raise ConnectionError("later")
        return x

    @app.task("total", queue="totals")
    async def total(ctx: Context, x: int) -> int:
        return sum(child.result for child in await ctx.children())

    try:
        root = await app.enqueue_flow(
            Flow(name="total", payload=0, children=[Flow(name="part", payload=i) for i in (1, 2)])
        )
        await run_until_idle(app, timeout=5)
        assert await root.result(timeout=1) == 3
    finally:
        await app.close()
