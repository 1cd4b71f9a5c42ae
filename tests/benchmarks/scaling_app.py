"""The no-op tasks ``bench_scaling.py`` drains: one task per queue of ``$BENCH_QUEUES``
(comma-separated; several queues spread over the shards of a cluster)."""

from __future__ import annotations

import os

from streamq import App, Context

QUEUES = os.environ.get("BENCH_QUEUES", "bench").split(",")

app = App("bench-scaling", result_ttl=60.0, events_maxlen=10_000)


async def noop(ctx: Context, n: int) -> None:
    return None


for _i, _queue in enumerate(QUEUES):
    app.task(f"noop-{_i}", queue=_queue, lease=30.0)(noop)
