"""Reading and operating queues: job records, stats, pause, cancel, dead letters, events."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from streamq import _keys
from streamq._codec import decode_any, decode_spec
from streamq._connection import broker_errors
from streamq._handle import parse_event
from streamq._ids import validate_job_id
from streamq._types import LANES, DeadLetter, Event, Job, LaneStats, QueueStats

if TYPE_CHECKING:
    from streamq._app import App

# A worker that has not renewed its heartbeat for this long is not counted as alive.
WORKER_ALIVE_MS = 15_000
_REPLAY_BATCH = 500


def _ms(value: bytes | None) -> float | None:
    return int(value) / 1000.0 if value else None


def job_from_hash(queue: str, job_id: str, h: dict[bytes, bytes]) -> Job:
    spec = decode_spec(h[b"spec"])
    error = h.get(b"error")
    reason = h.get(b"reason")
    return Job(
        id=job_id,
        queue=queue,
        name=spec.name,
        state=h[b"state"].decode(),
        priority=spec.lane,
        payload=decode_any(bytes(spec.payload)),
        attempt=int(h.get(b"attempt", 1)),
        max_attempts=int(h.get(b"max_attempts", spec.max_attempts)),
        deliveries=int(h.get(b"deliveries", 0)),
        timeout=spec.timeout,
        lease=spec.lease,
        created_at=_ms(h.get(b"created_at")),
        run_at=_ms(h.get(b"run_at")),
        started_at=_ms(h.get(b"started_at")),
        finished_at=_ms(h.get(b"finished_at")),
        parent=spec.parent,
        request_id=spec.request_id,
        result=decode_any(h.get(b"result")),
        error=error.decode() if error else None,
        reason=reason.decode() if reason else None,
        progress=float(h.get(b"progress", 0)),
        progress_message=h.get(b"progress_message", b"").decode(),
        first_event=h[b"first_event"].decode() if h.get(b"first_event") else None,
    )


async def read_job(app: App, queue: str, job_id: str) -> Job | None:
    validate_job_id(job_id)
    await app.connect()
    with broker_errors(f"reading job {job_id}"):
        h = await app.redis.hgetall(_keys.job(queue, job_id))
    if not h or b"spec" not in h:
        return None
    return job_from_hash(queue, job_id, h)


async def cancel(app: App, queue: str, job_id: str) -> bool:
    validate_job_id(job_id)
    await app.connect()
    keys = [_keys.events(queue), _keys.stats(queue), _keys.delayed(queue)]
    args = [
        _keys.prefix(queue),
        _keys.GROUP,
        app.events_maxlen,
        job_id,
        int(app.result_ttl * 1000),
        app.keep_last,
    ]
    with broker_errors(f"cancelling job {job_id}"):
        state = await app.scripts.call("cancel", keys, args)
    return state in (b"cancelled", b"cancelling")


async def set_paused(app: App, queue: str, paused: bool) -> None:
    await app.register_queue(queue)
    keys = [_keys.events(queue), _keys.paused(queue)]
    args = [_keys.prefix(queue), _keys.GROUP, app.events_maxlen, "1" if paused else "0"]
    with broker_errors(f"pausing {queue}" if paused else f"resuming {queue}"):
        await app.scripts.call("pause", keys, args)


async def queue_names(app: App) -> list[str]:
    await app.connect()
    with broker_errors("listing queues"):
        members = await app.redis.smembers(_keys.registry())
    return sorted(m.decode() for m in members)


async def stats(app: App, queue: str) -> QueueStats:
    await app.connect()
    now_ms = time.time() * 1000
    with broker_errors(f"reading stats of {queue}"):
        pipe = app.redis.pipeline(transaction=False)
        for lane in LANES:
            pipe.xlen(_keys.lane(queue, lane))
            pipe.xpending(_keys.lane(queue, lane), _keys.GROUP)
        pipe.zcard(_keys.delayed(queue))
        pipe.xlen(_keys.dead(queue))
        pipe.hgetall(_keys.stats(queue))
        pipe.exists(_keys.paused(queue))
        pipe.zcount(_keys.workers(queue), now_ms - WORKER_ALIVE_MS, "+inf")
        replies = await pipe.execute(raise_on_error=False)
        lanes: dict[str, LaneStats] = {}
        for i, lane in enumerate(LANES):
            length, pending = replies[2 * i], replies[2 * i + 1]
            length = length if isinstance(length, int) else 0
            count = pending["pending"] if isinstance(pending, dict) else 0
            lanes[lane] = LaneStats(depth=max(length - count, 0), pending=count)
        delayed, dead, totals, paused, workers = replies[2 * len(LANES) :]
        oldest = await _oldest_waiting_age(app, queue, lanes, now_ms)
    return QueueStats(
        queue=queue,
        paused=bool(paused),
        lanes=lanes,
        waiting=sum(s.depth for s in lanes.values()),
        active=sum(s.pending for s in lanes.values()),
        delayed=delayed,
        dead=dead,
        totals={k.decode(): int(v) for k, v in (totals or {}).items()},
        workers=workers,
        oldest_waiting_age=oldest,
    )


async def _oldest_waiting_age(
    app: App, queue: str, lanes: dict[str, LaneStats], now_ms: float
) -> float:
    """Age of the oldest undelivered entry: the first entry after each group's last delivery."""
    waiting = [lane for lane, s in lanes.items() if s.depth > 0]
    if not waiting:
        return 0.0
    oldest = now_ms
    for lane in waiting:
        key = _keys.lane(queue, lane)
        groups = await app.redis.xinfo_groups(key)
        last = next(
            (g["last-delivered-id"] for g in groups if g["name"] == _keys.GROUP.encode()), b"0-0"
        )
        first = await app.redis.xrange(key, min=b"(" + last, count=1)
        if first:
            oldest = min(oldest, int(first[0][0].split(b"-")[0]))
    return max(now_ms - oldest, 0.0) / 1000.0


def _dead_letter(entry_id: bytes, f: dict[bytes, bytes]) -> DeadLetter:
    eid = entry_id.decode()
    return DeadLetter(
        id=eid,
        job=f[b"id"].decode(),
        name=f.get(b"name", b"").decode(),
        reason=f.get(b"reason", b"").decode(),
        error=f.get(b"error", b"").decode(),
        attempt=int(f.get(b"attempt", 0)),
        at=int(eid.partition("-")[0]) / 1000.0,
    )


async def dead_letters(app: App, queue: str, count: int, after: str) -> list[DeadLetter]:
    await app.connect()
    start = after if after == "-" else f"({after}"
    with broker_errors(f"reading dead letters of {queue}"):
        entries = await app.redis.xrange(_keys.dead(queue), min=start, count=count)
    return [_dead_letter(eid, f) for eid, f in entries]


async def _dead_op(app: App, verb: str, queue: str, ids: list[str] | None) -> int:
    await app.connect()
    keys = [_keys.events(queue), _keys.dead(queue)]
    head: list[Any] = [_keys.prefix(queue), _keys.GROUP, app.events_maxlen, _REPLAY_BATCH]
    total = 0
    with broker_errors(f"{verb} of dead letters on {queue}"):
        if ids is not None:
            for start in range(0, len(ids), _REPLAY_BATCH):
                reply = await app.scripts.call(
                    verb, keys, [*head, "ids", *ids[start : start + _REPLAY_BATCH]]
                )
                total += _done(reply)[1]
            return total
        while True:  # all: in batches, so no single script call blocks Redis for long
            processed, n = _done(await app.scripts.call(verb, keys, [*head, "all"]))
            total += n
            if processed < _REPLAY_BATCH:
                return total


def _done(reply: Any) -> tuple[int, int]:
    """(entries processed, jobs affected) from a replay ({p, n}) or purge (n) reply."""
    if isinstance(reply, list):
        return int(reply[0]), int(reply[1])
    return int(reply), int(reply)


async def replay_dead(app: App, queue: str, ids: list[str] | None) -> int:
    return await _dead_op(app, "replay", queue, ids)


async def purge_dead(app: App, queue: str, ids: list[str] | None) -> int:
    return await _dead_op(app, "purge", queue, ids)


async def read_events(
    app: App, queue: str, after: str, count: int, block_ms: int | None
) -> list[Event]:
    await app.connect()
    with broker_errors(f"reading events of {queue}"):
        reply = await app.redis.xread({_keys.events(queue): after}, count=count, block=block_ms)
    return [parse_event(queue, eid, f) for _, entries in reply or () for eid, f in entries]


async def follow_events(app: App, queue: str, after: str, job: str | None) -> AsyncIterator[Event]:
    await app.connect()
    if after == "$":
        with broker_errors(f"reading events of {queue}"):
            last = await app.redis.xrevrange(_keys.events(queue), count=1)
        after = last[0][0].decode() if last else "0-0"
    while True:
        events = await read_events(app, queue, after, 500, 5000)
        for event in events:
            after = event.id
            if job is None or event.job == job:
                yield event
