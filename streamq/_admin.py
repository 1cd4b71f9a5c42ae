"""Reading and operating queues: job records, pause, cancel, dead letters.

Queue stats come from the read model (``streamq._inspect``), events from ``streamq._events``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from streamq import _inspect, _keys
from streamq._codec import decode_any, decode_spec
from streamq._connection import as_text, broker_errors, hash_fields, stream_entries

# Reads of the events stream live in streamq._events; App reaches them through this module.
from streamq._events import follow_events as follow_events
from streamq._events import read_events as read_events
from streamq._ids import validate_job_id
from streamq._types import DeadLetter, Job, QueueStats

if TYPE_CHECKING:
    from streamq._broker import Broker

_REPLAY_BATCH = 500
# A worker that has not renewed its heartbeat for this long is not counted as alive.
WORKER_ALIVE_MS = 15_000


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
        tags=h[b"tags"].decode().split("\n") if h.get(b"tags") else [],
    )


async def read_job(broker: Broker, queue: str, job_id: str) -> Job | None:
    validate_job_id(job_id)
    await broker.connect()
    with broker_errors(f"reading job {job_id}"):
        h = hash_fields(await broker.redis.hgetall(_keys.job(queue, job_id)))
    if not h or b"spec" not in h:
        return None
    return job_from_hash(queue, job_id, h)


async def cancel(broker: Broker, queue: str, job_id: str) -> bool:
    validate_job_id(job_id)
    await broker.connect()
    with broker_errors(f"cancelling job {job_id}"):
        state = await broker.scripts.cancel(queue, job_id)
    return state in ("cancelled", "cancelling")


async def set_paused(broker: Broker, queue: str, paused: bool) -> None:
    await broker.register_queue(queue)
    with broker_errors(f"pausing {queue}" if paused else f"resuming {queue}"):
        await broker.scripts.pause(queue, paused)


async def queue_names(broker: Broker) -> list[str]:
    await broker.connect()
    with broker_errors("listing queues"):
        members = await broker.redis.smembers(_keys.registry())
    return sorted(as_text(m) for m in members)


async def stats(broker: Broker, queue: str) -> QueueStats:
    """The queue's stats, from the read model (``streamq._inspect``)."""
    return await _inspect.ReadModel(broker).stats(queue)


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


async def dead_letters(broker: Broker, queue: str, count: int, after: str) -> list[DeadLetter]:
    await broker.connect()
    start = after if after == "-" else f"({after}"
    with broker_errors(f"reading dead letters of {queue}"):
        entries = stream_entries(
            await broker.redis.xrange(_keys.dead(queue), min=start, count=count)
        )
    return [_dead_letter(eid, f) for eid, f in entries]


async def replay_dead(broker: Broker, queue: str, ids: list[str] | None) -> int:
    async def replay(chunk: list[str] | None) -> tuple[int, int]:
        return await broker.scripts.replay(queue, chunk, limit=_REPLAY_BATCH)

    return await _dead_in_batches(broker, queue, ids, "replay", replay)


async def purge_dead(broker: Broker, queue: str, ids: list[str] | None) -> int:
    async def purge(chunk: list[str] | None) -> tuple[int, int]:
        n = await broker.scripts.purge(queue, chunk, limit=_REPLAY_BATCH)
        return n, n

    return await _dead_in_batches(broker, queue, ids, "purge", purge)


async def _dead_in_batches(
    broker: Broker,
    queue: str,
    ids: list[str] | None,
    action: str,
    run: Callable[[list[str] | None], Awaitable[tuple[int, int]]],
) -> int:
    """Runs ``run`` (one script call: entries looked at, entries changed) over ``ids`` or, for
    None, over every dead letter, in batches so no single call blocks Redis for long."""
    await broker.connect()
    total = 0
    with broker_errors(f"{action} of dead letters on {queue}"):
        if ids is not None:
            for start in range(0, len(ids), _REPLAY_BATCH):
                total += (await run(ids[start : start + _REPLAY_BATCH]))[1]
            return total
        while True:
            processed, n = await run(None)
            total += n
            if processed < _REPLAY_BATCH:
                return total
