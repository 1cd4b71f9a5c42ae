"""What the overview shows, kept so that open pages cost Redis nothing extra.

- ``SeriesTracker``: the server already samples every queue's running totals (every
  ``stats_sample_seconds``, and whenever stats are read) to compute rates. This tracker also
  adds each sample's increase to per-minute buckets, kept for a day in this process's memory
  (1,440 buckets per queue, a few kB): the overview's completed/failed charts. They are
  derived, not stored in Redis, so they start empty when the server starts and each server
  process has its own.
- ``Durations``: wait time (ready to started) and run time (started to finished) per interval,
  derived from each queue's events as the broker's shared feed reads them (one XREAD loop per
  queue, the one the pages' live streams use too; nothing is read per job). An event carries
  its job id, type and time (the entry id, Redis's clock): a job's wait is from its last
  ``queued`` event (enqueued, promoted when due, retried, reclaimed) to its ``active`` event,
  its run from ``active`` to ``completed``, ``retrying``, ``dead`` or ``cancelled``. A queue
  is followed from its first stats sample if the server's app has tasks for it, else from the
  first sample that finds its totals moved, until its totals stay still for ten minutes; at
  most 32 queues at once (each holds a blocked connection of the broker's pool):
  jobs that became ready before that have no wait measured, and a delayed job's wait starts
  when a worker's fetch promotes it (events do not carry its due time).
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
import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import msgspec

import streamq
from server.context import ServerState
from server.rates import RateTracker
from server.sse import Subscriber
from streamq import QueueStats, ReadModel

logger = logging.getLogger(__name__)
MINUTE = 60.0
DAY_MINUTES = 24 * 60
_encoder = msgspec.json.Encoder()


# Durations are counted in bins a quarter of a doubling wide (a reported percentile is within
# 9 % of the true one); bin 0 holds everything under a millisecond.
BINS_PER_DOUBLING = 4
QUARTER = 15
DAY_QUARTERS = DAY_MINUTES // QUARTER
STARTED = "active"
FINISHED = frozenset(("completed", "retrying", "dead", "cancelled"))
# Waiting or running no more: a queued job that went, a job whose run was lost.
GONE = frozenset(("removed", "reclaimed", "scheduled", "waiting-children"))


def duration_bin(ms: float) -> int:
    return 0 if ms < 1 else int(math.log2(ms) * BINS_PER_DOUBLING) + 1


def bin_seconds(index: int) -> float:
    """The middle of a bin (geometric), in seconds."""
    return 0.0005 if index == 0 else 2 ** ((index - 0.5) / BINS_PER_DOUBLING) / 1000


def percentile(histogram: Counter[int], p: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = p * total, 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return round(bin_seconds(index), 4)
    return None  # not reached: the last bin reaches the total


class Histograms:
    """One measure of one queue: a histogram per minute for the last hour and per quarter
    hour for the last day. Histograms add up exactly, so percentiles over any run of minutes
    are as good as per minute."""

    def __init__(self) -> None:
        self.minutes: deque[tuple[int, Counter[int]]] = deque(maxlen=60)
        self.quarters: deque[tuple[int, Counter[int]]] = deque(maxlen=DAY_QUARTERS)

    def add(self, minute: int, ms: float) -> None:
        index = duration_bin(ms)
        for buckets, key in ((self.minutes, minute), (self.quarters, minute // QUARTER)):
            if not buckets or buckets[-1][0] < key:
                buckets.append((key, Counter()))
            if buckets[-1][0] == key:  # events arrive in order; a late one is dropped
                buckets[-1][1][index] += 1


class Durations:
    """Wait and run times of every queue, from its events (see the module docstring).

    ``observe`` is the feed's callback (no I/O). At most ``max_tracked`` jobs per queue are
    remembered as waiting and as running: when more wait, the newest are not timed until room
    frees, so the jobs timed are the ones ahead (a backlog drains oldest first).
    """

    MEASURES = ("wait", "run")

    def __init__(
        self, max_tracked: int = 100_000, max_queues: int = 32, quiet_seconds: float = 600.0
    ) -> None:
        self.max_tracked = max_tracked
        self.max_queues = max_queues
        self.quiet_seconds = quiet_seconds
        self.active_at: dict[str, float] = {}
        self.ready: dict[str, dict[str, float]] = {}
        self.started: dict[str, dict[str, float]] = {}
        self.histograms: dict[str, dict[str, Histograms]] = {}
        self.subscriptions: dict[str, streamq.Subscription] = {}
        self.closed = False
        self._pending: set[asyncio.Task[None]] = set()

    def _histograms(self, queue: str) -> dict[str, Histograms]:
        found = self.histograms.get(queue)
        if found is None:
            found = self.histograms[queue] = {m: Histograms() for m in self.MEASURES}
        return found

    def observe(self, queue: str, events: list[streamq.Event]) -> None:
        ready = self.ready.setdefault(queue, {})
        started = self.started.setdefault(queue, {})
        histograms = self._histograms(queue)
        for event in events:
            job, kind, at = event.job, event.type, event.at
            if not job:
                continue
            minute = int(at // MINUTE)
            if kind == "queued":
                started.pop(job, None)
                if job in ready or len(ready) < self.max_tracked:
                    ready[job] = at
            elif kind == STARTED:
                since = ready.pop(job, None)
                if since is not None:
                    histograms["wait"].add(minute, (at - since) * 1000)
                if len(started) < self.max_tracked:
                    started[job] = at
            elif kind in FINISHED:
                ready.pop(job, None)
                since = started.pop(job, None)
                if since is not None:
                    histograms["run"].add(minute, (at - since) * 1000)
            elif kind in GONE:
                ready.pop(job, None)
                started.pop(job, None)

    def series(
        self, queues: list[str], first: int, step: int, count: int
    ) -> dict[str, list[float | None]]:
        """p50 and p95 of each measure over ``queues`` together, per bucket of ``step``
        minutes from minute ``first`` (``count`` buckets), in seconds; None where nothing was
        measured."""
        out: dict[str, list[float | None]] = {}
        for measure in self.MEASURES:
            merged: list[Counter[int]] = [Counter() for _ in range(count)]
            for queue in queues:
                h = self.histograms.get(queue, {}).get(measure)
                if h is None:
                    continue
                buckets, scale = (h.minutes, 1) if step < QUARTER else (h.quarters, QUARTER)
                for key, histogram in buckets:
                    index = (key * scale - first) // step
                    if 0 <= index < count:
                        merged[index].update(histogram)
            out[f"{measure}_p50"] = [percentile(m, 0.5) for m in merged]
            out[f"{measure}_p95"] = [percentile(m, 0.95) for m in merged]
        return out

    def follow(self, app: streamq.App, queue: str, active: bool) -> None:
        """Called at each stats sample of ``queue`` (``active``: its totals moved since the
        last one). Follows the active queues' events, at most ``max_queues`` at once, and
        stops following a queue quiet for ``quiet_seconds``: each followed queue holds a
        blocked connection of the broker's pool (shared with open pages' streams)."""
        now = time.monotonic()
        if active:
            self.active_at[queue] = now
        for name, sub in list(self.subscriptions.items()):
            if now - self.active_at.get(name, now) > self.quiet_seconds:
                sub.close()
                del self.subscriptions[name]
                self.ready.pop(name, None)  # what it missed from now on would be wrong
                self.started.pop(name, None)
        if active and len(self.subscriptions) + len(self._pending) < self.max_queues:
            self.watch(app, queue)

    def watch(self, app: streamq.App, queue: str) -> None:
        """Starts following ``queue``'s events (once; from the event loop, without waiting)."""
        if (
            self.closed
            or queue in self.subscriptions
            or any(t.get_name() == queue for t in self._pending)
        ):
            return
        task = asyncio.get_running_loop().create_task(self._subscribe(app, queue), name=queue)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _subscribe(self, app: streamq.App, queue: str) -> None:
        try:
            sub = await streamq.event_feeds(app.broker).subscribe(
                queue, lambda events: self.observe(queue, events), on_close=self.close
            )
        except Exception as exc:  # Redis away: the next stats sample tries again
            logger.warning("cannot follow the events of %s for durations: %s", queue, exc)
            return
        if self.closed:
            sub.close()
        else:
            self.subscriptions[queue] = sub

    def close(self) -> None:
        """Stops following every queue (the server stops, or the broker's feeds closed)."""
        self.closed = True
        for sub in self.subscriptions.values():
            sub.close()
        self.subscriptions.clear()


class SeriesTracker(RateTracker):
    """A RateTracker that also keeps completed/failed/dead counts per minute for a day, and
    (given the app) times the jobs of the queues it sees active (``Durations``)."""

    KINDS = ("completed", "failed", "dead", "enqueued")

    def __init__(
        self,
        window: float = 60.0,
        max_queues: int = 10_000,
        app: streamq.App | None = None,
    ) -> None:
        super().__init__(window, max_queues)
        self._last: dict[str, dict[str, int]] = {}
        self._minutes: dict[str, deque[list[int]]] = {}
        self.app = app
        self.durations = Durations()

    def record(self, queue: str, totals: Mapping[str, int], now: float | None = None) -> None:
        super().record(queue, totals, now)
        wall = time.time()
        previous = self._last.get(queue)
        self._last[queue] = {k: int(totals.get(k, 0)) for k in self.KINDS}
        if self.app is not None:
            # The app's own queues from the first sample; any other once its totals move.
            own = previous is None and queue in self.app.queues_of_tasks()
            moved = previous is not None and previous != self._last[queue]
            self.durations.follow(self.app, queue, own or moved)
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

    def series(self, queues: list[str], minutes: int, step: int) -> dict[str, list[float | None]]:
        """``queues`` together over the last ``minutes`` minutes in buckets of ``step``
        minutes: ``t`` (epoch seconds of each bucket's start), one count list per kind (zeros
        where nothing was recorded) and the durations' percentiles (``Durations.series``)."""
        now_minute = int(time.time() // MINUTE)
        first = now_minute - minutes + 1
        first -= first % step
        count = (now_minute - first) // step + 1
        t: list[float | None] = [(first + i * step) * MINUTE for i in range(count)]
        counts = {kind: [0.0] * count for kind in self.KINDS}
        for bucket in (b for q in queues for b in self._minutes.get(q, ())):
            index = (bucket[0] - first) // step
            if 0 <= index < count:
                for i, kind in enumerate(self.KINDS, start=1):
                    counts[kind][index] += bucket[i]
        out: dict[str, list[float | None]] = {"t": t}
        out.update({kind: list[float | None](values) for kind, values in counts.items()})
        out.update(self.durations.series(queues, first, step, count))
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
        # Bumped whenever rates read in the background differ from the ones shown.
        self.rates_seq = 0
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
        changed = False
        for queue, rates in zip(names, values, strict=True):
            changed = changed or self.rates.get(queue) != rates
            self.rates[queue], self.rates_at[queue] = rates, taken
        if changed:  # open pages show new rates now, not at their next event or idle tick
            self.rates_seq += 1
            self.taken_at = -1e9

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
        rates_seen = overview.rates_seq
        while True:
            dirty = overview.rates_seq != rates_seen
            rates_seen = overview.rates_seq
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
