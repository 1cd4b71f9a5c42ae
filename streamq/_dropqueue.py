"""Deleting a queue entirely: every job with its record, log, trace context and flow
bookkeeping, then the queue's own keys (lanes and their groups, delayed and finished sets,
dead letters, the job index and tags, events, stats, schedules, rate limit, workers' rosters), then
its registry entry.

Nothing is scanned: jobs are found where they are kept (lane streams, the delayed set, the
job index, the dead-letter stream, ...) and taken off those in batches of ``BATCH`` by
``lua/dropqueue-2.lua``, each a few ms of Redis at most; the big keys left are freed with
UNLINK (off Redis's main thread). Since each batch takes its jobs off their source, a
deletion cut short (``max_batches``, a lost connection) resumes where it stopped, and the
registry entry goes last, so an unfinished deletion leaves the queue listed.

Keys that expire by themselves are left to expire: cached results, concurrency-group slots
and script replies (seconds to their TTL). A queue with live workers is refused unless
forced; forced, it is paused first so they stop taking its jobs (stop them too: a running
worker re-creates its empty lanes).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

import msgspec

from streamq import _keys
from streamq._admin import WORKER_ALIVE_MS
from streamq._connection import as_text, broker_errors
from streamq._errors import QueueInUse
from streamq._opscripts import op_scripts
from streamq._types import LANES

if TYPE_CHECKING:
    from streamq._broker import Broker

BATCH = 100
_INDEXED_STATES = ("completed", "dead", "cancelled", "waiting-children")


class QueueDeletion(msgspec.Struct, frozen=True, kw_only=True):
    """What a deletion did: job records deleted, and whether the queue is gone (False: call
    again to go on)."""

    queue: str
    jobs: int
    done: bool


async def live_workers(broker: Broker, queue: str) -> int:
    """Workers of ``queue`` whose heartbeat is at most 15 s old."""
    now_ms = int(time.time() * 1000)
    with broker_errors(f"reading the workers of {queue}"):
        return int(
            await broker.redis.zcount(_keys.workers(queue), now_ms - WORKER_ALIVE_MS, "+inf")
        )


async def _sources(broker: Broker, queue: str) -> list[tuple[str, Literal["zset", "stream"]]]:
    names = [as_text(n) for n in await broker.redis.smembers(_keys.index_names(queue))]
    return [
        *((_keys.lane(queue, lane), "stream") for lane in LANES),
        (_keys.delayed(queue), "zset"),
        (_keys.suspects(queue), "zset"),
        (_keys.flows_waiting(queue), "zset"),
        *((_keys.index(queue, s, n), "zset") for s in _INDEXED_STATES for n in names),
        (_keys.dead(queue), "stream"),
        (_keys.finished(queue), "zset"),
    ]


async def delete_queue(
    broker: Broker, queue: str, *, force: bool = False, max_batches: int | None = None
) -> QueueDeletion:
    """Deletes ``queue`` and everything in it; with ``max_batches``, stops after about that
    many batches (``done`` False: call again). Raises ``QueueInUse`` (live workers, without
    ``force``), ``BrokerUnavailable``."""
    await broker.connect()
    workers = await live_workers(broker, queue)
    if workers and not force:
        raise QueueInUse(
            f"{workers} live worker(s) serve queue {queue!r}: stop them, or force the deletion",
            workers=workers,
        )
    redis = broker.redis
    scripts = op_scripts(broker)
    if workers:
        with broker_errors(f"pausing {queue}"):
            await broker.scripts.pause(queue, True)
    jobs = batches = 0
    with broker_errors(f"deleting queue {queue}"):
        for source, kind in await _sources(broker, queue):
            while True:
                if max_batches is not None and batches >= max_batches:
                    return QueueDeletion(queue=queue, jobs=jobs, done=False)
                taken, removed = await scripts.drop_batch(queue, source, kind=kind, count=BATCH)
                batches += taken > 0  # empty sources cost a call each, not a batch
                jobs += removed
                if taken < BATCH:
                    break
        while True:  # the tags' sets, a batch of tags at a time
            popped: list[tuple[bytes, float]] = await redis.zpopmin(_keys.tags(queue), BATCH)  # type: ignore[assignment]
            if popped:
                await redis.unlink(*(_keys.tag_index(queue, t.decode()) for t, _ in popped))
            if len(popped) < BATCH:
                break
        consumers = [as_text(c) for c in await redis.zrange(_keys.workers(queue), 0, -1)]  # type: ignore[arg-type]
        names = [as_text(n) for n in await redis.smembers(_keys.index_names(queue))]
        keys = [
            *(_keys.lane(queue, lane) for lane in LANES),
            _keys.delayed(queue),
            _keys.suspects(queue),
            _keys.flows_waiting(queue),
            _keys.dead(queue),
            _keys.finished(queue),
            *(_keys.index(queue, s, n) for s in _INDEXED_STATES for n in names),
            _keys.index_names(queue),
            _keys.tags(queue),
            _keys.events(queue),
            _keys.stats(queue),
            _keys.paused(queue),
            _keys.unserved(queue),
            _keys.schedules(queue),
            _keys.schedules_last(queue),
            _keys.schedules_jobs(queue),
            _keys.ratelimit(queue),
            _keys.ratelimit_log(queue),
            *(_keys.roster(queue, c) for c in consumers),
            _keys.workers(queue),
        ]
        pipe = redis.pipeline(transaction=False)
        for start in range(0, len(keys), 100):
            pipe.unlink(*keys[start : start + 100])
        pipe.srem(_keys.registry(), queue)
        await pipe.execute()
    # The broker registers a queue once per process: the next enqueue must register it again.
    broker._registered_queues.discard(queue)
    return QueueDeletion(queue=queue, jobs=jobs, done=True)
