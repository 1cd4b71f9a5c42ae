"""What the overview shows, kept so that open pages cost Redis nothing extra.

- ``SeriesTracker``: the server already samples every queue's running totals (every
  ``stats_sample_seconds``, and whenever stats are read) to compute rates. This tracker also
  adds each sample's increase to per-minute buckets, kept for a day in this process's memory
  (1,440 buckets per queue, a few kB): the overview's completed/failed charts. They are
  derived, not stored in Redis, so they start empty when the server starts and each server
  process has its own.
- ``Overview``: one snapshot of every queue, shared by every open page and re-read from Redis
  at most once per ``max_age`` seconds, only while pages are watching. Its counts and rates
  are the read model's (``streamq.ReadModel``), the figures ``GET /v1/queues`` and
  ``streamq inspect`` show (rates at most ``rates_max_age`` seconds old); only the charts
  come from the tracker above.
- ``live_stream``: one server-sent-event stream per open overview. It listens to the queues'
  shared event feeds (``server.sse``: one XREAD loop per queue however many pages are open)
  and, when something happened, sends the shared snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import msgspec

from server.context import ServerState
from server.rates import RateTracker
from server.sse import Subscriber
from streamq import QueueStats, ReadModel

logger = logging.getLogger(__name__)
MINUTE = 60.0
DAY_MINUTES = 24 * 60
_encoder = msgspec.json.Encoder()


class SeriesTracker(RateTracker):
    """A RateTracker that also keeps completed/failed/dead counts per minute for a day."""

    KINDS = ("completed", "failed", "dead", "enqueued")

    def __init__(self, window: float = 60.0, max_queues: int = 10_000) -> None:
        super().__init__(window, max_queues)
        self._last: dict[str, dict[str, int]] = {}
        self._minutes: dict[str, deque[list[int]]] = {}

    def record(self, queue: str, totals: Mapping[str, int], now: float | None = None) -> None:
        super().record(queue, totals, now)
        wall = time.time()
        previous = self._last.get(queue)
        self._last[queue] = {k: int(totals.get(k, 0)) for k in self.KINDS}
        if previous is None:
            return  # the first sample only sets the baseline
        buckets = self._minutes.setdefault(queue, deque(maxlen=DAY_MINUTES))
        minute = int(wall // MINUTE)
        if not buckets or buckets[-1][0] != minute:
            buckets.append([minute, *([0] * len(self.KINDS))])
        bucket = buckets[-1]
        for i, kind in enumerate(self.KINDS, start=1):
            # A counter that went down (a queue deleted and recreated) adds nothing.
            bucket[i] += max(0, self._last[queue][kind] - previous[kind])

    def series(self, queue: str, minutes: int, step: int) -> dict[str, list[float]]:
        """The last ``minutes`` minutes in buckets of ``step`` minutes: ``t`` (epoch seconds
        of each bucket's start) and one list per kind, zeros where nothing was recorded."""
        now_minute = int(time.time() // MINUTE)
        first = now_minute - minutes + 1
        first -= first % step
        count = (now_minute - first) // step + 1
        out: dict[str, list[float]] = {"t": [(first + i * step) * MINUTE for i in range(count)]}
        for kind in self.KINDS:
            out[kind] = [0.0] * count
        for bucket in self._minutes.get(queue, ()):
            index = (bucket[0] - first) // step
            if 0 <= index < count:
                for i, kind in enumerate(self.KINDS, start=1):
                    out[kind][index] += bucket[i]
        return out


async def read_stats(state: ServerState, queue: str) -> QueueStats:
    """One queue's counts from the read model, within the server-wide limit on stats reads.
    Its totals also feed this server's per-minute series."""
    async with state.metrics.stats_slots:
        stats = await ReadModel(state.app.broker).stats(queue)
    state.rates.record(queue, stats.totals)
    return stats


def queue_summary(stats: QueueStats, rates: Mapping[str, float]) -> dict[str, Any]:
    """One queue's row on the overview. Done/s and the failure rate are the read model's
    rates (events over the last minute): failed attempts are ``retrying`` and ``dead``."""
    done = rates.get("completed", 0.0)
    failed = rates.get("retrying", 0.0) + rates.get("dead", 0.0)
    return {
        "name": stats.queue,
        "paused": stats.paused,
        "waiting": stats.waiting,
        "active": stats.active,
        "delayed": stats.delayed,
        "dead": stats.dead,
        "lanes": {
            lane: {"depth": s.depth, "pending": s.pending} for lane, s in stats.lanes.items()
        },
        "workers": stats.workers,
        "oldest_waiting_age": round(stats.oldest_waiting_age, 1),
        "completed_per_s": round(done, 2),
        "failure_rate": round(failed / (done + failed), 3) if done + failed > 0 else 0.0,
        "dead_growing": rates.get("dead", 0.0) > 0,
        "totals": dict(stats.totals),
    }


class Overview:
    """The shared snapshot of every queue (see the module docstring).

    Counts are re-read at most every ``max_age`` seconds. Rates cost more to read (the read
    model counts up to thousands of events per busy queue), so they are re-read at most every
    ``rates_max_age`` seconds, in the background: a page never waits for them once they have
    been read once.
    """

    def __init__(
        self, state: ServerState, max_age: float = 1.0, rates_max_age: float = 5.0
    ) -> None:
        self.state = state
        self.max_age = max_age
        self.rates_max_age = rates_max_age
        self.taken_at = -1e9
        self.version = 0
        self.queues: list[dict[str, Any]] = []
        self.rates: dict[str, dict[str, float]] = {}
        self.rates_at: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    async def read_rates(self, names: list[str]) -> None:
        """The read model's rates of ``names``, over the same minute (one clock reading)."""
        model = ReadModel(self.state.app.broker)
        now_ms = await model.server_ms()

        async def one(queue: str) -> dict[str, float]:
            async with self.state.metrics.stats_slots:
                return await model.rates(queue, now_ms)

        values = await asyncio.gather(*(one(q) for q in names))
        taken = time.monotonic()
        for queue, rates in zip(names, values, strict=True):
            self.rates[queue], self.rates_at[queue] = rates, taken

    async def _refresh_rates(self, names: list[str]) -> None:
        try:
            await self.read_rates(names)
        except Exception:  # the next snapshot tries again; the page keeps the last rates
            logger.warning("reading queue rates failed", exc_info=True)

    async def rates_of(self, queue: str) -> dict[str, float]:
        """One queue's rates, read now unless read within ``rates_max_age`` seconds."""
        if time.monotonic() - self.rates_at.get(queue, -1e9) >= self.rates_max_age:
            await self.read_rates([queue])
        return self.rates[queue]

    async def snapshot(self, max_age: float | None = None) -> list[dict[str, Any]]:
        limit = self.max_age if max_age is None else max_age
        async with self._lock:  # one reader refreshes; the others wait and share its result
            if time.monotonic() - self.taken_at >= limit:
                names = await self.state.queue_names()
                stats = await asyncio.gather(*(read_stats(self.state, q) for q in names))
                unread = [q for q in names if q not in self.rates]
                if unread:  # the first look at a queue waits for its rates
                    await self.read_rates(unread)
                now = time.monotonic()
                stale = [q for q in names if now - self.rates_at[q] >= self.rates_max_age]
                if stale and (self._refresh is None or self._refresh.done()):
                    self._refresh = asyncio.create_task(self._refresh_rates(stale))
                queues = [queue_summary(s, self.rates[s.queue]) for s in stats]
                if queues != self.queues:
                    self.version += 1
                self.queues = queues
                self.taken_at = time.monotonic()
            return self.queues


def _sse(event: str, body: object) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (event.encode(), _encoder.encode(body))


async def live_stream(
    state: ServerState,
    overview: Overview,
    *,
    visible: Callable[[str], bool] = lambda queue: True,
    idle_seconds: float = 10.0,
    tick: float = 0.5,
) -> AsyncIterator[bytes]:
    """Overview snapshots whenever a watched queue had an event (and every ``idle_seconds``
    regardless, for what events do not show, such as workers coming and going). Only the
    queues ``visible`` admits are watched and sent (those the viewer's token may read)."""
    subs: list[Subscriber] = []
    try:
        for queue in filter(visible, await state.queue_names()):
            subs.append(await state.hub.subscribe(queue))  # noqa: PERF401 (each await joins a feed)
        sent = -1
        last = 0.0
        while True:
            dirty = False
            for sub in subs:
                if sub.closed:
                    return
                if sub.take() or sub.overflowed:
                    sub.reset()
                    dirty = True
            if dirty or time.monotonic() - last >= idle_seconds:
                queues = await overview.snapshot()
                last = time.monotonic()
                if overview.version != sent:
                    sent = overview.version
                    shown = [q for q in queues if visible(q["name"])]
                    yield _sse("overview", {"queues": shown})
                else:
                    yield b": idle\n\n"
            await asyncio.sleep(tick)
    finally:
        for sub in subs:
            with contextlib.suppress(Exception):
                state.hub.unsubscribe(sub)
