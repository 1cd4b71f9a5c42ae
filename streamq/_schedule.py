"""Recurring jobs: ``cron`` expressions (croniter, in a time zone) or ``every`` N seconds.

Schedules are registered in code (:meth:`App.schedule`) or stored in Redis under their queue's
tag at run time (:func:`add_schedule`), so every scheduler sees them. Each tick becomes a job
whose id is derived from the schedule id and the tick's time, so however many schedulers run,
a tick is enqueued once (the others' enqueues deduplicate). The newest tick fired is kept in
Redis and only moves forward; a scheduler that was down fires at most ``catch_up`` of the ticks
it missed (the newest ones).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import croniter

from streamq import _keys
from streamq._codec import decode_any, encode
from streamq._connection import as_bytes, as_text, broker_errors
from streamq._enqueue import EnqueueRequest, enqueue_batch
from streamq._errors import ConfigurationError
from streamq._handle import JobHandle
from streamq._ids import job_id, validate_job_id
from streamq._types import TERMINAL_STATES

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._context import Application
    from streamq._task import TaskRegistry

log = logging.getLogger(__name__)

# A scheduler re-reads the stored schedules at least this often.
_REFRESH = 1.0


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """A recurring job: task ``name`` with ``payload`` on ``queue``, every ``every`` seconds
    (ticks aligned to multiples of it since the epoch) or on ``cron`` in time zone ``tz``.
    ``overlap=False`` skips a tick while the previous tick's job is still unfinished."""

    id: str
    name: str
    queue: str
    payload: Any = None
    cron: str | None = None
    every: float | None = None
    tz: str | None = None
    overlap: bool = True
    priority: str | int | None = None
    catch_up: int = 1
    stored: bool = False

    def ticks(self, after_ms: int, now_ms: int, most: int) -> list[int]:
        """The newest ``most`` ticks in (after_ms, now_ms], oldest first."""
        out: list[int] = []
        if self.every is not None:
            step = max(int(self.every * 1000), 1)
            tick = now_ms - now_ms % step
            while tick > after_ms and len(out) < most:
                out.append(tick)
                tick -= step
        else:
            zone = ZoneInfo(self.tz or "UTC")
            start = datetime.fromtimestamp((now_ms + 1) / 1000, zone)
            it = croniter(self.cron, start)
            while len(out) < most:
                tick = int(it.get_prev(float) * 1000)
                if tick <= after_ms:
                    break
                out.append(tick)
        return out[::-1]

    def next_after(self, tick_ms: int) -> int:
        """The first tick after ``tick_ms``."""
        if self.every is not None:
            step = max(int(self.every * 1000), 1)
            return tick_ms - tick_ms % step + step
        zone = ZoneInfo(self.tz or "UTC")
        it = croniter(self.cron, datetime.fromtimestamp(tick_ms / 1000, zone))
        return int(it.get_next(float) * 1000)


# Schedules defined in code, by the task registry of the application they belong to.
_code: weakref.WeakKeyDictionary[TaskRegistry, dict[str, Schedule]] = weakref.WeakKeyDictionary()


def make_schedule(
    registry: TaskRegistry,
    name: str,
    payload: Any = None,
    *,
    cron: str | None = None,
    every: float | None = None,
    tz: str | None = None,
    overlap: bool = True,
    id: str | None = None,
    queue: str | None = None,
    priority: str | int | None = None,
    catch_up: int = 1,
    stored: bool = False,
) -> Schedule:
    """Validates a schedule. Raises ``ConfigurationError`` (and ``UnknownJob``,
    ``InvalidPayload``, ``InvalidJobId`` from the task's own checks)."""
    task = registry.task_def(queue, name)
    queue = queue or task.queue
    if (cron is None) == (every is None):
        raise ConfigurationError("give a schedule exactly one of cron= or every=")
    if every is not None and not (every > 0 and math.isfinite(every)):
        raise ConfigurationError(f"every must be a positive number of seconds, not {every!r}")
    if cron is not None and not croniter.is_valid(cron):
        raise ConfigurationError(f"invalid cron expression {cron!r}")
    if tz is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"unknown time zone {tz!r}") from exc
    if catch_up < 1:
        raise ConfigurationError("catch_up must be >= 1")
    task.coerce(payload)
    sid = (
        validate_job_id(id) if id is not None else job_id("schedule", name, queue, cron, every, tz)
    )
    return Schedule(
        id=sid,
        name=name,
        queue=queue,
        payload=decode_any(encode(payload)),
        cron=cron,
        every=every,
        tz=tz,
        overlap=overlap,
        priority=priority,
        catch_up=catch_up,
        stored=stored,
    )


def register(registry: TaskRegistry, schedule: Schedule) -> Schedule:
    """Adds a schedule defined in code (replacing one with the same id)."""
    _code.setdefault(registry, {})[schedule.id] = schedule
    return schedule


def code_schedules(registry: TaskRegistry) -> list[Schedule]:
    return list(_code.get(registry, {}).values())


_stored_key = _keys.schedules
_last_key = _keys.schedules_last
_jobs_key = _keys.schedules_jobs


_decoder = msgspec.msgpack.Decoder(Schedule)


async def add_schedule(broker: Broker, schedule: Schedule) -> Schedule:
    """Stores a schedule in Redis (any scheduler serving its queue picks it up)."""
    await broker.register_queue(schedule.queue)
    stored = msgspec.structs.replace(schedule, stored=True)
    with broker_errors(f"storing schedule {schedule.id}"):
        await broker.redis.hset(_stored_key(schedule.queue), schedule.id, encode(stored))
    return stored


async def remove_schedule(broker: Broker, queue: str, schedule_id: str) -> bool:
    """Removes a stored schedule; True if there was one. (Code schedules live in code.)"""
    await broker.connect()
    with broker_errors(f"removing schedule {schedule_id}"):
        pipe = broker.redis.pipeline(transaction=False)
        pipe.hdel(_stored_key(queue), schedule_id)
        pipe.hdel(_last_key(queue), schedule_id)
        pipe.hdel(_jobs_key(queue), schedule_id)
        removed, _, _ = await pipe.execute()
    return bool(removed)


async def stored_schedules(broker: Broker, queue: str) -> list[Schedule]:
    await broker.connect()
    with broker_errors(f"reading schedules of {queue}"):
        raw = await broker.redis.hgetall(_stored_key(queue))
    out = []
    for value in raw.values():
        try:
            out.append(_decoder.decode(as_bytes(value)))
        except msgspec.DecodeError as exc:
            log.warning("unreadable schedule on %s: %s", queue, exc)
    return out


async def list_schedules(
    broker: Broker, registry: TaskRegistry, queue: str | None = None
) -> list[Schedule]:
    """Schedules of ``queue`` (default: every queue the app has tasks or schedules for), code
    and stored, by id."""
    queues = [queue] if queue else _default_queues(registry)
    found = {s.id: s for s in code_schedules(registry) if s.queue in queues}
    for q in queues:
        for s in await stored_schedules(broker, q):
            found[s.id] = s
    return sorted(found.values(), key=lambda s: (s.queue, s.id))


def _default_queues(registry: TaskRegistry) -> list[str]:
    return sorted({*registry.queues(), *(s.queue for s in code_schedules(registry))})


class Scheduler:
    """Enqueues the ticks of an app's recurring jobs on ``queues`` (default: all of the app's)
    until :meth:`stop`. Any number may run at once: each tick is enqueued once."""

    def __init__(self, app: Application, queues: list[str] | None = None) -> None:
        self.app = app
        self.broker = app.broker
        self.registry = app.registry
        self.queues = queues or _default_queues(self.registry)
        self._stop = asyncio.Event()
        self.fired = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        await self.broker.connect()
        log.info("scheduler serving %s", ", ".join(self.queues))
        while not self._stop.is_set():
            try:
                wait = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: try again soon
                log.warning("scheduler pass failed: %s", exc)
                wait = 1.0
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=wait)
            except TimeoutError:
                pass

    async def run_once(self) -> float:
        """Fires every due tick; returns seconds until the next one may be due."""
        soonest = time.time() + _REFRESH
        for queue in self.queues:
            schedules = {s.id: s for s in code_schedules(self.registry) if s.queue == queue}
            for s in await stored_schedules(self.broker, queue):
                schedules[s.id] = s
            if not schedules:
                continue
            ids = list(schedules)
            with broker_errors(f"reading schedule state of {queue}"):
                lasts = await self.broker.redis.hmget(_last_key(queue), ids)
            for sid, last in zip(ids, lasts, strict=True):
                s = schedules[sid]
                newest = await self._fire_due(s, int(last) if last is not None else None)
                soonest = min(soonest, s.next_after(newest) / 1000)
        return min(max(soonest - time.time(), 0.01), _REFRESH)

    async def _fire_due(self, s: Schedule, last: int | None) -> int:
        now_ms = int(time.time() * 1000)
        if last is None:
            # First sight of this schedule: start from now, as cron does, without firing.
            newest = (s.ticks(-1, now_ms, 1) or [now_ms])[-1]
            await self._advance(s, newest, "")
            return newest
        ticks = s.ticks(last, now_ms, s.catch_up)
        for tick in ticks:
            fired = await self._fire(s, tick)
            await self._advance(s, tick, fired or "")
        return ticks[-1] if ticks else last

    async def _fire(self, s: Schedule, tick: int) -> str | None:
        broker = self.broker
        if not s.overlap:
            with broker_errors(f"reading schedule {s.id}"):
                previous = await broker.redis.hget(_jobs_key(s.queue), s.id)
            if previous is not None:
                state = await JobHandle(broker, s.queue, as_text(previous)).state()
                if state is not None and state not in TERMINAL_STATES:
                    log.info(
                        "skipping a tick of %s: its previous run %s is still %s",
                        s.id,
                        as_text(previous),
                        state,
                    )
                    return None
        jid = job_id("tick", s.id, tick)
        request = EnqueueRequest(
            name=s.name, payload=s.payload, id=jid, queue=s.queue, priority=s.priority
        )
        (handle,) = await enqueue_batch(broker, self.registry, [request])
        if not handle.deduplicated:
            self.fired += 1
            log.info("fired %s for tick %d", s.id, tick, extra={"job_id": jid, "queue": s.queue})
        return jid

    async def _advance(self, s: Schedule, tick: int, fired: str) -> None:
        with broker_errors(f"recording a tick of {s.id}"):
            await self.broker.scripts.tick(s.queue, s.id, tick, fired or None)


async def start_scheduler(
    app: Application, queues: list[str], enabled: bool | None
) -> list[asyncio.Task[None]]:
    """The scheduler a worker runs beside its fetch loops: always with ``enabled=True``, never
    with False, and with None when its queues have schedules in code or in Redis."""
    if enabled is False:
        return []
    if enabled is None:
        has = any(s.queue in queues for s in code_schedules(app.registry))
        if not has:
            pipe = app.broker.redis.pipeline(transaction=False)
            for queue in queues:
                pipe.exists(_stored_key(queue))
            with broker_errors("looking for schedules"):
                has = any(await pipe.execute())
        if not has:
            return []
    scheduler = Scheduler(app, queues)
    return [asyncio.create_task(scheduler.run(), name="scheduler")]


async def run_scheduler(app: Application, queues: list[str] | None = None) -> None:
    """Runs a scheduler alone until SIGTERM/SIGINT."""
    import signal

    scheduler = Scheduler(app, queues)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, scheduler.stop)
    try:
        await scheduler.run()
    finally:
        await app.close()
