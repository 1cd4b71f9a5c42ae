"""The roster: which tasks the live workers of a queue serve, what they are running, and what a
worker does with a job it has no handler for.

Each worker publishes, per queue, the names of the tasks it serves (with their payload JSON
schemas) in a key that expires with its heartbeat, and beside it its load: its concurrency, the
slots in use, and the jobs of that queue it holds, taken from its in-flight deliveries in
memory when it publishes (every third of its heartbeat TTL, in the same round trip), so it
costs no Redis call per job and is that many seconds old at most. A worker that receives a job it has no
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


def load_key(queue: str, consumer: str) -> str:
    """One worker's load on ``queue`` (JSON, see ``Load``); expires with its heartbeat."""
    return f"{_keys.roster(queue, consumer)}:load"


@dataclass(frozen=True)
class Load:
    """What a worker runs: ``concurrency`` jobs at once at most (all its queues together),
    ``in_use`` of them now, and ``jobs``, the (job id, lane) it holds on one queue."""

    concurrency: int
    in_use: int
    jobs: list[tuple[str, str]]

    @classmethod
    def of(cls, queue: str, concurrency: int, inflight: Mapping[str, Delivery]) -> Load:
        """A worker's load on ``queue`` from its in-flight deliveries (entry id -> delivery)."""
        held = list(inflight.values())
        return cls(
            concurrency=concurrency,
            in_use=len(held),
            jobs=[(d.job_id, d.lane) for d in held if d.queue == queue],
        )

    def dumps(self) -> str:
        return json.dumps(
            {"concurrency": self.concurrency, "in_use": self.in_use, "jobs": self.jobs}
        )

    @classmethod
    def loads(cls, raw: bytes | str) -> Load | None:
        """The load a worker published, or None for anything else."""
        try:
            found: Any = json.loads(raw)
            return cls(
                concurrency=int(found["concurrency"]),
                in_use=int(found["in_use"]),
                jobs=[(str(job), str(lane)) for job, lane in found["jobs"]],
            )
        except (ValueError, KeyError, TypeError):
            return None


async def publish(
    broker: Broker,
    queue: str,
    consumer: str,
    tasks: Mapping[str, str],
    ttl_ms: int,
    load: Load | None = None,
) -> None:
    """Records that ``consumer`` serves ``tasks`` on ``queue``, with its ``load``, for the
    next ``ttl_ms``."""
    if not tasks and load is None:
        return
    pipe = broker.redis.pipeline(transaction=False)
    if tasks:
        key = _keys.roster(queue, consumer)
        pipe.hset(key, items=[part for pair in tasks.items() for part in pair])
        pipe.pexpire(key, ttl_ms)
        pipe.hdel(_keys.unserved(queue), *tasks)
    if load is not None:
        pipe.set(load_key(queue, consumer), load.dumps(), px=ttl_ms)
    await pipe.execute()


async def withdraw(broker: Broker, queue: str, consumer: str) -> None:
    """Removes ``consumer``'s entries (a worker that stops)."""
    await broker.redis.delete(_keys.roster(queue, consumer), load_key(queue, consumer))


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
