"""The names the ops files are checked against (ops_support.known_metric_names) are the names
streamq really exports: the server's /metrics body plus the workers' default registry."""

from __future__ import annotations

from collections.abc import Callable

from ops_support import known_metric_names
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

import streamq
from server.metrics import ServerMetrics
from server.rates import RateTracker

SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}


async def render(app: streamq.App) -> list[Metric]:
    """What /metrics renders: the server's registry plus the process-wide one that holds the
    worker and producer counters."""
    metrics = ServerMetrics(app, sse_clients=lambda: 0, rates=RateTracker())
    body = (await metrics.render(include_process=True)).decode()
    return list(text_string_to_metric_families(body))


def series_names(families: list[Metric]) -> set[str]:
    """Every series name the families can produce, whether or not they have samples yet."""
    names: set[str] = set()
    for family in families:
        for suffix in SUFFIXES.get(family.type, ()):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return names


async def test_every_known_name_is_exported(
    app_factory: Callable[..., streamq.App], queue: str
) -> None:
    app = app_factory()  # the conftest closes it and deletes the queue's keys

    @app.task("noop", queue=queue)
    async def noop(ctx: streamq.Context, n: int) -> int:
        return n

    await app.enqueue("noop", 1)  # registers the queue, so its gauges have a series
    families = await render(app)
    missing = known_metric_names() - series_names(families)
    assert not missing, f"ops files rely on names streamq does not export: {sorted(missing)}"
    # The gauges the alerts group by carry the labels they use.
    samples = [s for family in families for s in family.samples]
    depth = {
        s.labels["lane"]
        for s in samples
        if s.name == "streamq_lane_depth" and s.labels.get("queue") == queue
    }
    assert depth == set(streamq.LANES)
    for name in ("streamq_workers_alive", "streamq_oldest_waiting_seconds", "streamq_dead_jobs"):
        assert any(s.name == name and s.labels.get("queue") == queue for s in samples), name
