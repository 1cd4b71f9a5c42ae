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


@app.task("flow-child", queue=QUEUE_B, lease=LEASE, max_deliveries=10)
async def flow_child(ctx: Context, n: int) -> int:
    await asyncio.sleep(float(os.environ.get("ORCH_CHILD_SLEEP", "0.2")))
    return n * n


@app.task("flow-parent", queue=QUEUE, lease=LEASE)
async def flow_parent(ctx: Context, _: None) -> dict[str, int]:
    # Every run of the parent is counted, so the test can tell a double run.
    await ctx.app.redis.hincrby(_keys.custom(QUEUE, "test-runs"), ctx.job_id, 1)
    children = await ctx.children()
    done = [c.result for c in children if c.state == "completed"]
    return {"completed": len(done), "sum": sum(done)}


@app.task("tick", queue=QUEUE)
async def tick(ctx: Context, _: None) -> None:
    await ctx.app.redis.rpush(_keys.custom(QUEUE, "test-ticks"), ctx.job_id)


if os.environ.get("ORCH_EVERY"):
    app.schedule("tick", every=float(os.environ["ORCH_EVERY"]), id="every-tick")
