"""The app the crash tests run in worker subprocesses (settings from the environment)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from streamq import App, Context, _keys

QUEUE = os.environ.get("CRASH_QUEUE", "crash")
LEASE = float(os.environ.get("CRASH_LEASE", "1.0"))
WORK_SECONDS = float(os.environ.get("CRASH_WORK", "0.005"))

app = App("crash", events_maxlen=int(os.environ.get("CRASH_EVENTS", "200000")))


@app.task(
    "work",
    queue=QUEUE,
    lease=LEASE,
    backoff=0.2,
    max_deliveries=int(os.environ.get("CRASH_MAXDEL", "50")),
    max_attempts=int(os.environ.get("CRASH_ATTEMPTS", "1")),
)
async def work(ctx: Context, tag: str) -> str:
    # Every handler run is counted, so the test can tell repeats from completions.
    await ctx.app.redis.hincrby(_keys.custom(QUEUE, "test-runs"), ctx.job_id, 1)
    if tag == "poison":
        os.kill(os.getpid(), signal.SIGKILL)
    if tag == "block":
        # A sync call in async code: the whole event loop stops for this long.
        time.sleep(float(os.environ.get("CRASH_BLOCK", "2.5")))  # noqa: ASYNC251
    elif tag == "zombie":
        # The first delivery stalls (the test freezes this process); later ones are quick.
        await asyncio.sleep(3.0 if ctx.deliveries == 1 else 0)
    else:
        await asyncio.sleep(WORK_SECONDS)
    return os.environ.get("WORKER_NAME", "worker")
