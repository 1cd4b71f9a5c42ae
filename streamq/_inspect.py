"""The read model: what there is to see of a queue, read from Redis in one place.

``streamq inspect ...`` and the server's queue views (``GET /v1/queues``, ``/v1/queues/{q}``)
both read through ``ReadModel``, so they cannot disagree: queue stats (counts per state and
lane, totals, workers, oldest waiting age), rates, lanes, consumer groups, pending entries, one
job's history, dead letters. Every value is a msgspec Struct; ``msgspec.to_builtins`` gives the
JSON both show.

**Rates** have one meaning: events per second by type (``RATE_TYPES``) over the last
``RATE_WINDOW_S`` seconds of the queue's events stream, measured by Redis's clock. They are read
from Redis when asked (no samples kept by a process), so any two readers at the same moment
report the same figures. They are counted inside Redis by a read-only script (``rates-1.lua``), so
only the counts travel. When more than ``RATE_SAMPLE`` events fall in the window, the rate is
taken over the span the newest ``RATE_SAMPLE`` of them cover.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import msgspec

from streamq import _admin, _keys
from streamq._codec import decode_spec
from streamq._connection import as_bytes, as_text, broker_errors, stream_entries
from streamq._events import entry_key, parse_event
from streamq._types import LANES, DeadLetter, Event, Job, LaneStats, QueueStats

if TYPE_CHECKING:
    from streamq._broker import Broker

RATE_WINDOW_S = 60.0
# Counting an event costs Redis a few microseconds: a thousand bound a busy queue's read to a
# few ms, and a rate over a thousand events is within a few percent.
RATE_SAMPLE = 1000
RATE_TYPES = ("queued", "completed", "retrying", "dead", "cancelled", "reclaimed")
# Queues read concurrently for a listing (each read is a few round trips).
QUEUES_AT_ONCE = 16
HISTORY_PAGE = 1000
HISTORY_MAX = 100_000
# A job's events start at its enqueue; a margin covers clock skew between writers.
HISTORY_MARGIN_MS = 5000


class QueueSummary(QueueStats, frozen=True, kw_only=True):
    """A queue's stats with its rates (see the module docstring for what a rate is)."""

    rates: dict[str, float]


class LaneInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One lane's stream and its consumer group."""

    lane: str
    length: int
    waiting: int
    pending: int
    lag: int | None
    consumers: int
    last_delivered_id: str | None
    oldest_entry_age: float | None


class ConsumerInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One consumer of a lane's group (a worker's name for it)."""

    name: str
    pending: int
    """Entries delivered to it and not yet acknowledged."""
    idle_s: float
    """Seconds since its last attempted interaction (XINFO CONSUMERS ``idle``)."""
    inactive_s: float | None
    """Seconds since its last successful read; None on servers older than Redis 7.2."""


class GroupInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A consumer group of one lane."""

    lane: str
    group: str
    pending: int
    lag: int | None
    """Entries not yet delivered to the group; None when the server cannot tell."""
    last_delivered_id: str
    consumers: list[ConsumerInfo]


class WorkerBeat(msgspec.Struct, frozen=True, kw_only=True):
    """A worker's heartbeat on the queue."""

    name: str
    last_seen_s: float
    alive: bool
    """Whether it beat within the last ``_admin.WORKER_ALIVE_MS``."""


class QueueGroups(msgspec.Struct, frozen=True, kw_only=True):
    """Consumer groups per lane with their consumers, and the workers' heartbeats."""

    queue: str
    groups: list[GroupInfo]
    workers: list[WorkerBeat]


class PendingEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A delivered, unacknowledged entry: its owner, idle time, deliveries and job."""

    lane: str
    entry_id: str
    job: str | None
    name: str | None
    consumer: str
    idle_s: float
    deliveries: int


class JobHistory(msgspec.Struct, frozen=True, kw_only=True):
    """A job's record (None once expired) and its events still in the stream."""

    job: Job | None
    history: list[Event]


class DeadPage(msgspec.Struct, frozen=True, kw_only=True):
    queue: str
    total: int
    letters: list[DeadLetter]


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


class ReadModel:
    """Reads of one broker's queues for operators (the CLI's ``inspect``, the server's views).

    Every method raises ``BrokerUnavailable`` when Redis cannot be read."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    @property
    def _redis(self) -> Any:
        # Replies are read as the untyped shapes redis-py returns for XINFO and XPENDING.
        return self.broker.redis

    async def server_ms(self) -> int:
        """Redis's clock in ms: stream ids come from it, so ages are measured against it."""
        await self.broker.connect()
        with broker_errors("reading the server time"):
            reply = await self._redis.time()
        if isinstance(reply, dict):  # a cluster client answers per node
            reply = next(iter(reply.values()))
        seconds, micros = reply
        return int(seconds) * 1000 + int(micros) // 1000

    async def queue_names(self) -> list[str]:
        return await _admin.queue_names(self.broker)

    async def stats(self, queue: str) -> QueueStats:
        """Counts per lane and state, cumulative totals, live workers, oldest waiting age."""
        await self.broker.connect()
        now_ms = time.time() * 1000
        redis = self._redis
        with broker_errors(f"reading stats of {queue}"):
            pipe = redis.pipeline(transaction=False)
            for lane in LANES:
                pipe.xlen(_keys.lane(queue, lane))
                pipe.xpending(_keys.lane(queue, lane), _keys.GROUP)
            pipe.zcard(_keys.delayed(queue))
            pipe.xlen(_keys.dead(queue))
            pipe.hgetall(_keys.stats(queue))
            pipe.exists(_keys.paused(queue))
            pipe.zcount(_keys.workers(queue), now_ms - _admin.WORKER_ALIVE_MS, "+inf")
            replies = await pipe.execute(raise_on_error=False)
            lanes: dict[str, LaneStats] = {}
            for i, lane in enumerate(LANES):
                length, pending = replies[2 * i], replies[2 * i + 1]
                length = length if isinstance(length, int) else 0
                count = pending["pending"] if isinstance(pending, dict) else 0
                lanes[lane] = LaneStats(depth=max(length - count, 0), pending=count)
            delayed, dead, totals, paused, workers = replies[2 * len(LANES) :]
            oldest = await self._oldest_waiting_age(queue, lanes, now_ms)
        return QueueStats(
            queue=queue,
            paused=bool(paused),
            lanes=lanes,
            waiting=sum(s.depth for s in lanes.values()),
            active=sum(s.pending for s in lanes.values()),
            delayed=delayed,
            dead=dead,
            totals={as_text(k): int(v) for k, v in (totals or {}).items()},
            workers=workers,
            oldest_waiting_age=oldest,
        )

    async def _oldest_waiting_age(
        self, queue: str, lanes: dict[str, LaneStats], now_ms: float
    ) -> float:
        """Age of the oldest undelivered entry: the first after each group's last delivery."""
        oldest = now_ms
        for lane in (lane for lane, s in lanes.items() if s.depth > 0):
            key = _keys.lane(queue, lane)
            group = await self._group(key)
            last = group["last-delivered-id"] if group else b"0-0"
            first = stream_entries(
                await self._redis.xrange(key, min=b"(" + as_bytes(last), count=1)
            )
            if first:
                oldest = min(oldest, entry_key(first[0][0].decode())[0])
        return max(now_ms - oldest, 0.0) / 1000.0

    async def rates(self, queue: str, now_ms: int | None = None) -> dict[str, float]:
        """Events per second by type over the last minute (or the span the sample covers),
        counted inside Redis (``rates-1.lua``): nothing but the counts crosses the network."""
        await self.broker.connect()
        with broker_errors(f"reading events of {queue}"):
            found = await self.broker.scripts.count_events(
                queue,
                end_ms=now_ms,
                window_ms=int(RATE_WINDOW_S * 1000),
                sample=RATE_SAMPLE,
                types=RATE_TYPES,
            )
        span_ms = RATE_WINDOW_S * 1000
        if found.examined == RATE_SAMPLE:  # busier than the sample: rate over what it covers
            span_ms = max(found.end_ms - found.last_ms, 1)
        return {kind: round(n * 1000 / span_ms, 3) for kind, n in found.counts.items()}

    async def summary(self, queue: str, now_ms: int | None = None) -> QueueSummary:
        """``stats`` and ``rates`` of one queue."""
        stats = await self.stats(queue)
        rates = await self.rates(queue, now_ms)
        return QueueSummary(**msgspec.structs.asdict(stats), rates=rates)

    async def summaries(self, queues: list[str] | None = None) -> list[QueueSummary]:
        """The summary of every queue in the registry (or of ``queues``), in that order."""
        names = await self.queue_names() if queues is None else queues
        now_ms = await self.server_ms()
        limit = asyncio.Semaphore(QUEUES_AT_ONCE)

        async def one(queue: str) -> QueueSummary:
            async with limit:
                return await self.summary(queue, now_ms)

        return list(await asyncio.gather(*(one(q) for q in names)))

    async def _group(self, key: str) -> dict[Any, Any] | None:
        if not await self._redis.exists(key):
            return None
        for g in await self._redis.xinfo_groups(key):
            if as_text(g["name"]) == _keys.GROUP:
                return dict(g)
        return None

    async def lanes(self, queue: str) -> list[LaneInfo]:
        """Per lane: stream length, waiting, pending, lag, oldest entry, last delivered id."""
        now_ms = await self.server_ms()
        out = []
        redis = self._redis
        with broker_errors(f"reading lanes of {queue}"):
            for lane in LANES:
                key = _keys.lane(queue, lane)
                length = await redis.xlen(key)
                group = await self._group(key)
                first = stream_entries(await redis.xrange(key, count=1)) if length else []
                oldest = entry_key(first[0][0].decode())[0] if first else None
                pending = int(group["pending"]) if group else 0
                out.append(
                    LaneInfo(
                        lane=lane,
                        length=length,
                        waiting=max(length - pending, 0),
                        pending=pending,
                        lag=_int(group.get("lag")) if group else None,
                        consumers=int(group["consumers"]) if group else 0,
                        last_delivered_id=as_text(group["last-delivered-id"]) if group else None,
                        oldest_entry_age=(now_ms - oldest) / 1000 if oldest else None,
                    )
                )
        return out

    async def groups(self, queue: str) -> QueueGroups:
        """Consumer groups per lane with their consumers (idle times), and worker heartbeats."""
        now_ms = await self.server_ms()
        out: list[GroupInfo] = []
        redis = self._redis
        with broker_errors(f"reading consumer groups of {queue}"):
            for lane in LANES:
                key = _keys.lane(queue, lane)
                if not await redis.exists(key):
                    continue
                for g in await redis.xinfo_groups(key):
                    name = as_text(g["name"])
                    consumers = [
                        ConsumerInfo(
                            name=as_text(c["name"]),
                            pending=int(c["pending"]),
                            idle_s=int(c["idle"]) / 1000,
                            inactive_s=(
                                int(c["inactive"]) / 1000
                                if int(c.get("inactive", -1)) >= 0
                                else None
                            ),
                        )
                        for c in await redis.xinfo_consumers(key, name)
                    ]
                    out.append(
                        GroupInfo(
                            lane=lane,
                            group=name,
                            pending=int(g["pending"]),
                            lag=_int(g.get("lag")),
                            last_delivered_id=as_text(g["last-delivered-id"]),
                            consumers=consumers,
                        )
                    )
            beats = await redis.zrange(_keys.workers(queue), 0, -1, withscores=True)
        workers = [
            WorkerBeat(
                name=as_text(name),
                last_seen_s=max(now_ms - score, 0) / 1000,
                alive=now_ms - score <= _admin.WORKER_ALIVE_MS,
            )
            for name, score in beats
        ]
        return QueueGroups(queue=queue, groups=out, workers=workers)

    async def pending(self, queue: str, lane: str | None, limit: int) -> list[PendingEntry]:
        """Delivered, unacknowledged entries (of one lane, or all): owner, idle, the job."""
        await self.broker.connect()
        out: list[PendingEntry] = []
        redis = self._redis
        with broker_errors(f"reading pending entries of {queue}"):
            for name in [lane] if lane else LANES:
                key = _keys.lane(queue, name)
                if len(out) >= limit or await self._group(key) is None:
                    continue
                rows = await redis.xpending_range(key, _keys.GROUP, "-", "+", limit - len(out))
                pipe = redis.pipeline(transaction=False)
                for row in rows:
                    pipe.xrange(key, row["message_id"], row["message_id"])
                entries = await pipe.execute() if rows else []
                for row, entry in zip(rows, entries, strict=True):
                    job, job_name = None, None
                    if entry:
                        fields = entry[0][1]
                        job = as_text(fields.get(b"id", b""))
                        if b"spec" in fields:
                            job_name = decode_spec(fields[b"spec"]).name
                    out.append(
                        PendingEntry(
                            lane=name,
                            entry_id=as_text(row["message_id"]),
                            job=job,
                            name=job_name,
                            consumer=as_text(row["consumer"]),
                            idle_s=int(row["time_since_delivered"]) / 1000,
                            deliveries=int(row["times_delivered"]),
                        )
                    )
        return out

    async def job_history(self, queue: str, job_id: str) -> JobHistory | None:
        """The job's record and its history from the events stream; None if neither exists."""
        record = await _admin.read_job(self.broker, queue, job_id)
        start = "-"
        if record is not None and record.created_at:
            start = str(max(int(record.created_at * 1000) - HISTORY_MARGIN_MS, 0))
        history: list[Event] = []
        read = 0
        with broker_errors(f"reading events of {queue}"):
            while read < HISTORY_MAX:
                entries = stream_entries(
                    await self._redis.xrange(_keys.events(queue), min=start, count=HISTORY_PAGE)
                )
                read += len(entries)
                history.extend(
                    parse_event(queue, eid, f)
                    for eid, f in entries
                    if f.get(b"j") == job_id.encode()
                )
                if len(entries) < HISTORY_PAGE:
                    break
                start = "(" + entries[-1][0].decode()
        if record is None and not history:
            return None
        return JobHistory(job=record, history=history)

    async def dead(self, queue: str, limit: int) -> DeadPage:
        """The oldest ``limit`` dead letters of ``queue`` and how many there are."""
        await self.broker.connect()
        with broker_errors(f"reading dead letters of {queue}"):
            total = await self._redis.xlen(_keys.dead(queue))
        letters = await _admin.dead_letters(self.broker, queue, limit, "-")
        return DeadPage(queue=queue, total=total, letters=letters)
