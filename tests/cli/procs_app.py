"""The app of the ``--processes`` tests: a job returns the pid of the worker process that ran
it (its queue comes from the environment; a short lease, so a killed worker's jobs come back
soon)."""

from __future__ import annotations

import asyncio
import os

from streamq import App, Context

QUEUE = os.environ.get("CLI_TEST_QUEUE", "procs-test")
LEASE_S = 3.0

app = App("procs-test")


@app.task("whoami", queue=QUEUE, lease=LEASE_S)
async def whoami(ctx: Context, seconds: float) -> int:
    await asyncio.sleep(seconds)
    return os.getpid()
