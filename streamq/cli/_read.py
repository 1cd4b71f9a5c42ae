"""What ``streamq inspect`` reads: queue stats, rates, lanes, consumer groups, pending entries,
one job's record and history, dead letters. Each reader returns builtins (the ``--json``
output); the CLI renders the same data as tables."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec

from streamq import _keys
from streamq._codec import decode_spec
from streamq._connection import broker_errors
from streamq._handle import parse_event
from streamq._types import LANES
from streamq.cli._output import UsageError

if TYPE_CHECKING:
    from streamq._app import App

RATE_WINDOW_S = 60.0
# Rates come from the events stream: at most this many recent events are read per queue.
RATE_SAMPLE = 5000
RATE_TYPES = ("queued", "completed", "retrying", "dead")
# A worker whose heartbeat is older than this is shown as gone (the core counts 15 s).
WORKER_ALIVE_S = 15.0
HISTORY_PAGE = 1000
# Queues read concurrently by `inspect queues` (each read is a few round trips).
QUEUES_AT_ONCE = 16
HISTORY_MAX = 100_000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry_ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])


async def server_ms(app: App) -> int:
    """Redis's clock in ms: stream ids come from it, so ages are measured against it."""
    with broker_errors("reading the server time"):
        reply = await app.redis.time()
    if isinstance(reply, dict):  # a cluster client answers per node
        reply = next(iter(reply.values()))
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


async def check_queue(app: App, queue: str) -> None:
    """Raises UsageError unless ``queue`` is in the registry (``sq:queues``)."""
    names = await app.queue_names()
    if queue not in names:
        known = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise UsageError(f"unknown queue {queue!r}; known queues: {known or 'none'}")


async def rates(app: App, queue: str, now_ms: int) -> dict[str, float]:
    """Events per second by type over the last minute (or the span the sample covers)."""
    start = now_ms - int(RATE_WINDOW_S * 1000)
    with broker_errors(f"reading events of {queue}"):
        entries = await app.redis.xrevrange(
            _keys.events(queue), max="+", min=str(start), count=RATE_SAMPLE
        )
    span_ms = RATE_WINDOW_S * 1000
    if len(entries) == RATE_SAMPLE:  # busier than the sample: rate over what it covers
        span_ms = max(now_ms - _entry_ms(_text(entries[-1][0])), 1)
    counts = dict.fromkeys(RATE_TYPES, 0)
    for _, f in entries:
        kind = _text(f.get(b"t", b""))
        if kind in counts:
            counts[kind] += 1
    return {kind: round(n * 1000 / span_ms, 3) for kind, n in counts.items()}


async def queue_summary(app: App, queue: str, now_ms: int) -> dict[str, Any]:
    stats = msgspec.to_builtins(await app.stats(queue))
    stats["rates"] = await rates(app, queue, now_ms)
    return dict(stats)


async def queues(app: App) -> list[dict[str, Any]]:
    now_ms = await server_ms(app)
    limit = asyncio.Semaphore(QUEUES_AT_ONCE)

    async def one(queue: str) -> dict[str, Any]:
        async with limit:
            return await queue_summary(app, queue, now_ms)

    return list(await asyncio.gather(*(one(q) for q in await app.queue_names())))


async def lanes(app: App, queue: str) -> list[dict[str, Any]]:
    """Per lane: stream length, waiting, pending, lag, oldest entry, last delivered id."""
    now_ms = await server_ms(app)
    out = []
    with broker_errors(f"reading lanes of {queue}"):
        for lane in LANES:
            key = _keys.lane(queue, lane)
            length = await app.redis.xlen(key)
            group = await _group(app, key)
            first = await app.redis.xrange(key, count=1) if length else []
            oldest = _entry_ms(_text(first[0][0])) if first else None
            pending = int(group["pending"]) if group else 0
            out.append(
                {
                    "lane": lane,
                    "length": length,
                    "waiting": max(length - pending, 0),
                    "pending": pending,
                    "lag": group.get("lag") if group else None,
                    "consumers": int(group["consumers"]) if group else 0,
                    "last_delivered_id": _text(group["last-delivered-id"]) if group else None,
                    "oldest_entry_age": (now_ms - oldest) / 1000 if oldest else None,
                }
            )
    return out


async def _group(app: App, key: str) -> dict[str, Any] | None:
    if not await app.redis.exists(key):
        return None
    for g in await app.redis.xinfo_groups(key):
        if _text(g["name"]) == _keys.GROUP:
            return dict(g)
    return None


async def groups(app: App, queue: str) -> dict[str, Any]:
    """Consumer groups per lane with their consumers (idle times), and worker heartbeats."""
    now_ms = await server_ms(app)
    out: list[dict[str, Any]] = []
    with broker_errors(f"reading consumer groups of {queue}"):
        for lane in LANES:
            key = _keys.lane(queue, lane)
            if not await app.redis.exists(key):
                continue
            for g in await app.redis.xinfo_groups(key):
                name = _text(g["name"])
                consumers = [
                    {
                        "name": _text(c["name"]),
                        "pending": int(c["pending"]),
                        "idle_s": int(c["idle"]) / 1000,
                        "inactive_s": (
                            int(c["inactive"]) / 1000 if int(c.get("inactive", -1)) >= 0 else None
                        ),
                    }
                    for c in await app.redis.xinfo_consumers(key, name)
                ]
                lag = g.get("lag")
                out.append(
                    {
                        "lane": lane,
                        "group": name,
                        "pending": int(g["pending"]),
                        "lag": int(lag) if lag is not None else None,
                        "last_delivered_id": _text(g["last-delivered-id"]),
                        "consumers": consumers,
                    }
                )
        beats = await app.redis.zrange(_keys.workers(queue), 0, -1, withscores=True)
    workers = [
        {
            "name": _text(name),
            "last_seen_s": max(now_ms - score, 0) / 1000,
            "alive": now_ms - score <= WORKER_ALIVE_S * 1000,
        }
        for name, score in beats
    ]
    return {"queue": queue, "groups": out, "workers": workers}


async def pending(app: App, queue: str, lane: str | None, limit: int) -> list[dict[str, Any]]:
    """Delivered, unacknowledged entries: owner, idle time, delivery count, the job."""
    out: list[dict[str, Any]] = []
    with broker_errors(f"reading pending entries of {queue}"):
        for name in [lane] if lane else LANES:
            key = _keys.lane(queue, name)
            if len(out) >= limit or await _group(app, key) is None:
                continue
            rows = await app.redis.xpending_range(key, _keys.GROUP, "-", "+", limit - len(out))
            pipe = app.redis.pipeline(transaction=False)
            for row in rows:
                pipe.xrange(key, row["message_id"], row["message_id"])
            entries = await pipe.execute() if rows else []
            for row, entry in zip(rows, entries, strict=True):
                job, job_name = None, None
                if entry:
                    f = entry[0][1]
                    job = _text(f.get(b"id", b""))
                    if b"spec" in f:
                        job_name = decode_spec(f[b"spec"]).name
                out.append(
                    {
                        "lane": name,
                        "entry_id": _text(row["message_id"]),
                        "job": job,
                        "name": job_name,
                        "consumer": _text(row["consumer"]),
                        "idle_s": int(row["time_since_delivered"]) / 1000,
                        "deliveries": int(row["times_delivered"]),
                    }
                )
    return out


async def job(app: App, queue: str, job_id: str) -> dict[str, Any] | None:
    """The job's record and its history from the events stream; None if neither exists."""
    record = await app.job(queue, job_id)
    start = "-"
    if record is not None and record.created_at:
        # Events of a job start at its enqueue; a margin covers clock skew between writers.
        start = str(max(int(record.created_at * 1000) - 5000, 0))
    history = []
    read = 0
    with broker_errors(f"reading events of {queue}"):
        while read < HISTORY_MAX:
            entries = await app.redis.xrange(_keys.events(queue), min=start, count=HISTORY_PAGE)
            read += len(entries)
            for eid, f in entries:
                if f.get(b"j") == job_id.encode():
                    history.append(parse_event(queue, eid, f))
            if len(entries) < HISTORY_PAGE:
                break
            start = "(" + _text(entries[-1][0])
    if record is None and not history:
        return None
    return {
        "job": msgspec.to_builtins(record) if record else None,
        "history": msgspec.to_builtins(history),
    }


async def dead(app: App, queue: str, limit: int) -> dict[str, Any]:
    with broker_errors(f"reading dead letters of {queue}"):
        total = await app.redis.xlen(_keys.dead(queue))
    letters = await app.dead_letters(queue, count=limit)
    return {"queue": queue, "total": total, "letters": msgspec.to_builtins(letters)}


def check_lane(lane: str | None) -> None:
    if lane is not None and lane not in LANES:
        raise UsageError(f"unknown lane {lane!r}; lanes: {', '.join(LANES)}")
