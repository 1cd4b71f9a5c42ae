"""``/metrics``: the server's own metrics plus queue gauges read from Redis at scrape time.

Each server instance has its own CollectorRegistry (so tests can build many apps in one
process). Queue gauges come from a custom Collector fed with a fresh ``app.stats()`` of every
queue just before the registry is rendered, so one scrape shows the whole system. When a
worker runs in the same process (``streamq run``), its counters live in prometheus_client's
default registry, which is appended to the output.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import streamq
from server.rates import RateTracker

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Stats reads in flight at once for the whole server (scrapes, queue listings, sampling),
# so listing many queues cannot take every connection of the App's pool.
STATS_CONCURRENCY = 16
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# The DESIGN §6 gauges: name, help and value, per lane of a queue and per queue.
_LANE_GAUGES: tuple[tuple[str, str, Callable[[streamq.LaneStats], float]], ...] = (
    ("streamq_lane_depth", "Jobs waiting in a lane, not yet delivered.", lambda s: s.depth),
    (
        "streamq_pending_jobs",
        "Jobs delivered to a worker and not yet settled.",
        lambda s: s.pending,
    ),
)
_QUEUE_GAUGES: tuple[tuple[str, str, Callable[[streamq.QueueStats], float]], ...] = (
    (
        "streamq_delayed_jobs",
        "Jobs scheduled for later (delay, retry backoff).",
        lambda s: s.delayed,
    ),
    ("streamq_dead_jobs", "Entries in the dead-letter stream.", lambda s: s.dead),
    (
        "streamq_oldest_waiting_seconds",
        "Age of the oldest job waiting in any lane.",
        lambda s: s.oldest_waiting_age,
    ),
    ("streamq_workers_alive", "Worker processes serving the queue.", lambda s: s.workers),
    ("streamq_queue_paused", "1 while the queue is paused.", lambda s: 1.0 if s.paused else 0.0),
)


class QueueCollector(Collector):
    """Turns the latest QueueStats snapshot into the DESIGN §6 gauges."""

    def __init__(self) -> None:
        self.snapshot: Sequence[streamq.QueueStats] = ()
        self.redis_up = True

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, text, lane_value in _LANE_GAUGES:
            family = GaugeMetricFamily(name, text, labels=["queue", "lane"])
            for stats in self.snapshot:
                for lane, lane_stats in stats.lanes.items():
                    family.add_metric([stats.queue, lane], lane_value(lane_stats))
            yield family
        for name, text, value in _QUEUE_GAUGES:
            family = GaugeMetricFamily(name, text, labels=["queue"])
            for stats in self.snapshot:
                family.add_metric([stats.queue], value(stats))
            yield family
        yield GaugeMetricFamily(
            "streamq_redis_up",
            "1 if the last scrape could read Redis.",
            value=1.0 if self.redis_up else 0.0,
        )


class ServerMetrics:
    """The registry of one server instance and the metrics it records itself."""

    def __init__(
        self,
        app: streamq.App,
        *,
        sse_clients: Callable[[], int],
        rates: RateTracker,
        deadline: float = 1.5,
    ) -> None:
        self.app = app
        self.deadline = deadline
        self.rates = rates
        self.stats_slots = asyncio.Semaphore(STATS_CONCURRENCY)
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "streamq_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "streamq_http_request_seconds",
            "Time to answer an HTTP request (for SSE: the stream's lifetime).",
            ["route"],
            registry=self.registry,
        )
        self.sse = Gauge(
            "streamq_sse_clients", "Open server-sent-event streams.", registry=self.registry
        )
        self.sse.set_function(lambda: float(sse_clients()))
        self.queues = QueueCollector()
        self.registry.register(self.queues)

    async def refresh(self) -> None:
        """Read every queue's stats from Redis into the collector (and the rate samples),
        within ``deadline`` seconds: a Redis that does not answer is ``streamq_redis_up 0``."""
        try:
            async with asyncio.timeout(self.deadline):
                names = sorted(set(await self.app.queue_names()) | set(self.app.queues_of_tasks()))
                snapshot = await asyncio.gather(*(self.stats(q) for q in names))
        except (streamq.StreamqError, OSError) as exc:  # OSError includes TimeoutError
            log.warning("metrics scrape could not read Redis: %s", exc)
            self.queues.snapshot = ()
            self.queues.redis_up = False
            return
        self.queues.snapshot = snapshot
        self.queues.redis_up = True
        for stats in snapshot:
            self.rates.record(stats.queue, stats.totals)

    async def stats(self, queue: str) -> streamq.QueueStats:
        """One queue's stats, within the server-wide limit on concurrent stats reads."""
        async with self.stats_slots:
            return await self.app.stats(queue)

    async def render(self, include_process: bool) -> bytes:
        await self.refresh()
        body = generate_latest(self.registry)
        if include_process:
            body += generate_latest(REGISTRY)
        return bytes(body)


class RequestMetricsMiddleware:
    """Counts requests and times them, labelled by the route template (not the raw path,
    which would give one series per job id)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = _route_label(scope)
            # Bounded label values only: a client can send any method name it likes.
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def _route_label(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else "unmatched"
