"""`streamq inspect logs` and the log section of `streamq inspect job`: the lines a handler
wrote with ``ctx.log``, on real servers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cli_support import cli

from streamq import App, Context


async def test_inspect_logs_and_job(
    app_factory: Callable[..., App],
    run_worker: Any,
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("cli-log")
    app = app_factory()

    @app.task("talk", queue=queue)
    async def talk(ctx: Context, n: int) -> int:
        await ctx.log("fetched signatures", count=n)
        await ctx.log("saved")
        return n

    @app.task("quiet", queue=queue)
    async def quiet(ctx: Context, n: int) -> int:
        return n

    url = ("--redis-url", redis_url)
    talking = await app.enqueue("talk", 12, id="t-1")
    silent = await app.enqueue("quiet", 1, id="q-1")
    async with run_worker(app):
        assert await talking.result(timeout=20) == 12
        assert await silent.result(timeout=20) == 1

    r = await cli(capsys, "inspect", "logs", queue, "t-1", "--json", *url)
    assert r.code == 0, r.err
    body = r.json()
    assert [(ln["message"], ln["fields"]) for ln in body["lines"]] == [
        ("fetched signatures", {"count": 12}),
        ("saved", {}),
    ]
    assert body["dropped"] == 0

    r = await cli(capsys, "inspect", "logs", queue, "t-1", *url)
    assert r.code == 0 and "fetched signatures count=12" in r.out and "saved" in r.out
    r = await cli(capsys, "inspect", "job", queue, "t-1", *url)
    assert r.code == 0 and "log (2 lines)" in r.out and "count=12" in r.out
    r = await cli(capsys, "inspect", "logs", queue, "q-1", *url)
    assert r.code == 0 and "no log lines" in r.out
    r = await cli(capsys, "inspect", "logs", queue, "nobody", *url)
    assert r.code == 1 and "no job 'nobody'" in r.err
