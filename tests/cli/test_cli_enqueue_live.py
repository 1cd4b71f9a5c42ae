"""``streamq enqueue`` without ``--app`` checks the name against the tasks the live workers of
the queue serve (they publish them with their heartbeat)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from cli_support import assert_one_line_error, cli

from streamq import App, Context
from streamq._roster import live_tasks


async def test_enqueue_refuses_a_name_no_live_worker_serves(
    app_factory: Callable[..., App],
    uniq: Callable[[str], str],
    redis_url: str,
    run_worker: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("live")
    app = app_factory()

    @app.task("sync-wallet", queue=queue)
    async def sync_wallet(ctx: Context, wallet: str) -> str:
        return wallet

    @app.task("fetch-balances", queue=queue)
    async def fetch_balances(ctx: Context, wallet: str) -> str:
        return wallet

    # No live worker: nothing to check against, so any name is accepted (as before).
    r = await cli(capsys, "enqueue", queue, "anything", "--redis-url", redis_url)
    assert r.code == 0, r.err
    async with run_worker(app):
        await app.connect()
        for _ in range(200):
            if await live_tasks(app.broker, queue):
                break
            await asyncio.sleep(0.02)
        r = await cli(capsys, "enqueue", queue, "sync-walet", "--payload", '{"wallet": 1}',
                      "--redis-url", redis_url)  # fmt: skip
        assert r.code == 2
        assert_one_line_error(r)
        assert "unknown job 'sync-walet'" in r.err
        assert "known: fetch-balances, sync-wallet" in r.err
        r = await cli(capsys, "enqueue", queue, "sync-wallet", "--payload", '"w1"',
                      "--redis-url", redis_url)  # fmt: skip
        assert r.code == 0, r.err
        job_id = json.loads(r.out)["id"]
        assert await app.handle(queue, job_id).result(timeout=10) == "w1"
