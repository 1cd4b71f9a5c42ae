"""The app the orchestration tests run in worker and scheduler subprocesses (settings from the
environment)."""

from __future__ import annotations

import asyncio
import os
import time

from streamq import App, Context, _keys

QUEUE = os.environ.get("ORCH_QUEUE", "orch")
QUEUE_B = os.environ.get("ORCH_QUEUE_B", "orch-b")
LEASE = float(os.environ.get("ORCH_LEASE", "30.0"))

app = App("orch")


@app.task("limited", queue=QUEUE)
async def limited(ctx: Context, n: int) -> None:
    # Start times go to Redis so the test can count starts per second across processes.
    await ctx.app.redis.rpush(_keys.custom(QUEUE, "test-starts"), repr(time.time()))
    await asyncio.sleep(0.01)
