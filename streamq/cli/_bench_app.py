"""The no-op task ``streamq bench`` runs in its worker process (queue from $BENCH_QUEUE)."""

from __future__ import annotations

import os

from streamq import App, Context

app = App("bench", result_ttl=60.0, events_maxlen=10_000)
QUEUE = os.environ.get("BENCH_QUEUE", "bench")


@app.task("noop", queue=QUEUE, lease=30.0)
async def noop(ctx: Context, n: int) -> None:
    return None
