"""`streamq inspect jobs`: a queue's jobs by state and name, paged with --cursor, as JSON and
as a table that stays readable at 80 columns."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import pytest
from cli_support import cli
from rich.console import Console

from streamq import App, Context, EnqueueRequest
from streamq.cli._jobs import jobs_table


async def test_inspect_jobs_lists_filters_and_pages(
    app_factory: Callable[..., App],
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("cli-jobs")
    app = app_factory()

    @app.task("sync-wallet", queue=queue)
    async def sync(ctx: Context, n: int) -> int:
        return n

    @app.task("fetch-balances", queue=queue)
    async def fetch(ctx: Context, n: int) -> int:
        return n

    await app.enqueue_many(
        [EnqueueRequest(name="sync-wallet", payload=i, id=f"sync-{i}") for i in range(5)]
    )
    await app.enqueue("fetch-balances", 1, id="fb-1", delay=600)
    url = ("--redis-url", redis_url)

    r = await cli(capsys, "inspect", "jobs", queue, "--state", "queued", "--json", *url)
    assert r.code == 0, r.err
    assert sorted(j["id"] for j in r.json()["jobs"]) == [f"sync-{i}" for i in range(5)]
    assert r.json()["next"] is None

    r = await cli(capsys, "inspect", "jobs", queue, "--name", "fetch-balances", "--json", *url)
    assert [(j["id"], j["state"]) for j in r.json()["jobs"]] == [("fb-1", "scheduled")]

    seen: list[str] = []
    cursor: list[str] = []
    for _ in range(10):
        r = await cli(capsys, "inspect", "jobs", queue, "--limit", "2", "--json", *cursor, *url)
        seen.extend(j["id"] for j in r.json()["jobs"])
        if r.json()["next"] is None:
            break
        cursor = ["--cursor", r.json()["next"]]
    assert sorted(seen) == sorted([f"sync-{i}" for i in range(5)] + ["fb-1"])

    r = await cli(capsys, "inspect", "jobs", queue, "--limit", "2", *url)
    assert r.code == 0, r.err
    assert "STATE" in r.out and "more: --cursor " in r.out

    r = await cli(capsys, "inspect", "jobs", queue, "--state", "finished", *url)
    assert r.code == 2 and "unknown state" in r.err


def test_table_at_80_columns_keeps_short_columns_whole() -> None:
    from streamq import Job

    now = time.time()
    jobs: list[Any] = [
        Job(
            id=f"sync-wallet-{'a1b2c3d4' * 3}",
            queue="wallet-operations",
            name="dashboard-wallet-analysis",
            state="waiting-children",
            attempt=2,
            max_attempts=3,
            created_at=now - 75,
        )
    ]
    out = io.StringIO()
    Console(file=out, width=80, highlight=False).print(jobs_table(jobs, now))
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "waiting-children" in out.getvalue() and "2/3" in out.getvalue()
    assert "1m15s" in out.getvalue()
