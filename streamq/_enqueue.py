"""Enqueue: validation first (nothing half-written), then one script call per queue batch."""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import msgspec
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamq._codec import encode
from streamq._connection import broker_errors
from streamq._errors import BrokerUnavailable, EnqueueOutcomeUnknown, InvalidJob
from streamq._handle import JobHandle
from streamq._ids import random_job_id, validate_job_id
from streamq._metrics import JOBS_ENQUEUED
from streamq._middleware import EnqueueCall, middlewares_of
from streamq._scripts import NewJob
from streamq._types import JobSpec, lane_of

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._task import TaskRegistry

log = logging.getLogger(__name__)

_CHUNK = 1000
_waitaof_missing: set[str] = set()


class EnqueueRequest(msgspec.Struct, kw_only=True):
    """One job for :meth:`App.enqueue_many` (the same options as :meth:`App.enqueue`)."""

    name: str
    payload: Any = None
    id: str | None = None
    queue: str | None = None
    priority: str | int | None = None
    delay: float | None = None
    run_at: float | None = None
    max_attempts: int | None = None
    timeout: float | None = None
    request_id: str | None = None
    dedup_ttl: float | None = None
    parent: tuple[str, str] | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    """Carried in the job to every delivery (``HandlerCall.headers``): set by middlewares."""


def _prepare(
    registry: TaskRegistry, result_ttl: float, req: EnqueueRequest, now: float
) -> tuple[str, NewJob]:
    """Validates one request; returns its queue and the job record to write."""
    task = registry.task_def(req.queue, req.name)
    queue = req.queue or task.queue
    job_id = validate_job_id(req.id) if req.id is not None else random_job_id()
    payload = task.coerce(req.payload)
    lane = lane_of(req.priority, task.priority)
    if req.delay is not None and req.run_at is not None:
        raise InvalidJob("give delay or run_at, not both")
    delay = req.delay if req.delay is not None else (req.run_at - now if req.run_at else 0.0)
    if not math.isfinite(delay):
        raise InvalidJob(f"delay must be a finite number of seconds, not {delay}")
    max_attempts = req.max_attempts if req.max_attempts is not None else task.max_attempts
    timeout = req.timeout if req.timeout is not None else task.timeout
    if max_attempts < 1:
        raise InvalidJob(f"max_attempts must be >= 1, not {max_attempts}")
    if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
        raise InvalidJob(f"timeout must be a positive number of seconds, not {timeout}")
    if req.dedup_ttl is not None and req.dedup_ttl < 0:
        raise InvalidJob("dedup_ttl must be >= 0")
    parent_id, parent_queue = req.parent if req.parent else (None, None)
    spec = JobSpec(
        name=task.name,
        payload=msgspec.Raw(encode(payload)),
        lane=lane,
        timeout=timeout,
        max_attempts=max_attempts,
        backoff=task.backoff,
        lease=task.lease,
        result_ttl=task.result_ttl if task.result_ttl is not None else result_ttl,
        created_at=now,
        request_id=req.request_id,
        parent=parent_id,
        parent_queue=parent_queue,
        headers=req.headers or None,
    )
    return queue, NewJob(
        id=job_id,
        name=task.name,
        lane=lane,
        spec=encode(spec),
        delay_ms=max(int(delay * 1000), 0),
        max_attempts=max_attempts,
        lease_ms=int(task.lease * 1000),
        max_deliveries=task.max_deliveries,
        dedup_ms=-1 if req.dedup_ttl is None else int(req.dedup_ttl * 1000),
        parent=parent_id or "",
    )


async def enqueue_batch(
    broker: Broker,
    registry: TaskRegistry,
    requests: list[EnqueueRequest],
    *,
    durable: bool = False,
) -> list[JobHandle]:
    middlewares = middlewares_of(broker)
    if middlewares is not None and middlewares.enqueue:
        return await middlewares.around_enqueue(
            EnqueueCall(jobs=requests, registry=registry),
            lambda: _write_batch(broker, registry, requests, durable=durable),
        )
    return await _write_batch(broker, registry, requests, durable=durable)


async def _write_batch(
    broker: Broker,
    registry: TaskRegistry,
    requests: list[EnqueueRequest],
    *,
    durable: bool = False,
) -> list[JobHandle]:
    now = time.time()
    prepared = [_prepare(registry, broker.retention.result_ttl, req, now) for req in requests]
    await broker.connect()
    by_queue: dict[str, list[int]] = defaultdict(list)
    for index, (queue, _) in enumerate(prepared):
        by_queue[queue].append(index)
    handles: list[JobHandle | None] = [None] * len(prepared)
    for queue, indexes in by_queue.items():
        await broker.register_queue(queue)
        for start in range(0, len(indexes), _CHUNK):
            chunk = indexes[start : start + _CHUNK]
            try:
                with broker_errors(f"enqueueing on {queue}"):
                    # The client re-sends after a dropped connection; the script answers a
                    # re-send with its first reply ("created", not "deduplicated").
                    replies = await broker.scripts.enqueue(queue, [prepared[i][1] for i in chunk])
            except BrokerUnavailable as exc:
                if not isinstance(
                    exc.__cause__, (RedisConnectionError, RedisTimeoutError, OSError)
                ):
                    raise  # Redis answered (an error, or out of memory): nothing was written
                ids = [job.id for _, job in prepared]
                raise EnqueueOutcomeUnknown(
                    f"{exc}; the jobs may have been written: enqueue them again with the same "
                    f"ids (first: {ids[0]})",
                    ids,
                ) from exc.__cause__
            for i, reply in zip(chunk, replies, strict=True):
                job = prepared[i][1]
                handles[i] = JobHandle(
                    broker,
                    queue,
                    job.id,
                    name=job.name,
                    deduplicated=reply.deduplicated,
                    state_at_enqueue=reply.state,
                )
                if not reply.deduplicated:
                    JOBS_ENQUEUED.labels(queue, job.name).inc()
    if durable:
        await _wait_for_aof(broker)
    return [h for h in handles if h is not None]


async def _wait_for_aof(broker: Broker) -> None:
    """Waits until the local AOF holds the writes (WAITAOF, Redis 7.2+ and Valkey)."""
    url = broker.url or ""
    if url in _waitaof_missing:
        return
    try:
        with broker_errors("waiting for the AOF"):
            await broker.redis.execute_command("WAITAOF", 1, 0, 5000)
    except Exception as exc:
        cause = exc.__cause__
        if isinstance(cause, ResponseError) and "unknown command" in str(cause).lower():
            _waitaof_missing.add(url)
            log.warning("server has no WAITAOF; durable enqueue relies on its appendfsync setting")
            return
        if isinstance(cause, ResponseError) and "appendonly" in str(cause).lower():
            _waitaof_missing.add(url)
            log.warning("AOF is off on the server; durable=True cannot wait for it")
            return
        raise
