"""The roster: which tasks the live workers of a queue serve, and what a worker does with a job
it has no handler for.

Each worker publishes, per queue, the names of the tasks it serves (with their payload JSON
schemas) in a key that expires with its heartbeat. A worker that receives a job it has no
handler for does not kill it: it hands it back at once (no attempt spent, not counted as a
delivery) and does not take that job again itself for a moment, so a worker that has the
handler gets it. Only when no live worker of the queue has served that task for ``grace``
seconds is the job dead-lettered, with reason ``unknown_job`` and an error that says so.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from streamq import _keys
from streamq._metrics import JOBS_DEAD

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._delivery import Delivery
    from streamq._settle import Settler
    from streamq._task import TaskRegistry

log = logging.getLogger(__name__)

DEFAULT_UNKNOWN_GRACE = 60.0
"""Seconds a task may go without any live worker serving it before its jobs are dead-lettered
(long enough for a rolling deploy or a worker restart)."""

# A worker that hands a job back leaves it to the others this long before taking it again.
_AVOID_MS = 2000


def tasks_of(registry: TaskRegistry, queue: str) -> dict[str, str]:
    """The tasks ``registry`` runs on ``queue``: name -> payload JSON schema (as JSON)."""
    return {
        t.name: json.dumps(t.json_schema(), sort_keys=True)
        for t in registry.tasks.values()
        if t.queue == queue
    }


async def publish(
    broker: Broker, queue: str, consumer: str, tasks: Mapping[str, str], ttl_ms: int
) -> None:
    """Records that ``consumer`` serves ``tasks`` on ``queue`` for the next ``ttl_ms``."""
    if not tasks:
        return
    key = _keys.roster(queue, consumer)
    pipe = broker.redis.pipeline(transaction=False)
    pipe.hset(key, items=[part for pair in tasks.items() for part in pair])
    pipe.pexpire(key, ttl_ms)
    pipe.hdel(_keys.unserved(queue), *tasks)
    await pipe.execute()


async def withdraw(broker: Broker, queue: str, consumer: str) -> None:
    """Removes ``consumer``'s entry (a worker that stops)."""
    await broker.redis.delete(_keys.roster(queue, consumer))


async def live_tasks(broker: Broker, queue: str) -> dict[str, str] | None:
    """The tasks the live workers of ``queue`` serve (name -> payload JSON schema), or None
    when no live worker publishes its tasks."""
    redis = (await broker.connect()).redis
    consumers = await redis.zrange(_keys.workers(queue), 0, -1)
    if not consumers:
        return None
    pipe = redis.pipeline(transaction=False)
    for consumer in consumers:
        name = consumer.decode() if isinstance(consumer, bytes) else str(consumer)
        pipe.hgetall(_keys.roster(queue, name))
    found: dict[str, str] = {}
    published = False
    for entry in await pipe.execute():
        published = published or bool(entry)
        for task, schema in entry.items():
            found[_text(task)] = _text(schema)
    return found if published else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class UnknownJobs:
    """What a worker does with a job it has no handler for (see the module docstring)."""

    def __init__(self, broker: Broker, settler: Settler, consumer: str, grace: float) -> None:
        self._broker = broker
        self._settler = settler
        self._consumer = consumer
        self._grace_ms = int(grace * 1000)

    async def handle(self, d: Delivery) -> None:
        name = d.spec.name
        try:
            served = name in (await live_tasks(self._broker, d.queue) or {})
            unserved_ms = 0 if served else await self._unserved_for_ms(d.queue, name)
        except Exception as exc:  # cannot tell: never kill a job on a doubt
            log.warning(
                "cannot read the roster, handing the job back: %s",
                exc,
                extra={"job_id": d.job_id, "queue": d.queue},
            )
            served, unserved_ms = True, 0
        if served or unserved_ms < self._grace_ms:
            avoid_ms = _AVOID_MS if served else min(_AVOID_MS, self._grace_ms - unserved_ms + 50)
            log.info(
                "no handler for %r here: handed back for another worker",
                name,
                extra={"job_id": d.job_id, "queue": d.queue, "attempt": d.attempt},
            )
            self._settler.add(d, "hand_back", delay_ms=avoid_ms, reason=self._consumer)
            return
        error = (
            f"no handler for {name!r} in any live worker of queue {d.queue!r} "
            f"(none for {self._grace_ms / 1000:g} s)"
        )
        log.warning(
            "job dead: %s",
            error,
            extra={"job_id": d.job_id, "queue": d.queue, "attempt": d.attempt},
        )
        JOBS_DEAD.labels(d.queue, name).inc()
        self._settler.add(
            d,
            "dead",
            data=error,
            ttl_ms=int(self._broker.retention.dead_ttl * 1000),
            reason="unknown_job",
        )

    async def _unserved_for_ms(self, queue: str, name: str) -> int:
        """How long no live worker has served ``name`` (0 on first notice)."""
        now = int(time.time() * 1000)
        pipe = self._broker.redis.pipeline(transaction=False)
        pipe.hsetnx(_keys.unserved(queue), name, now)
        pipe.hget(_keys.unserved(queue), name)
        _, since = await pipe.execute()
        return max(now - int(since), 0) if since is not None else 0
