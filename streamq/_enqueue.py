"""Enqueue: validation first (nothing half-written), then one script call per queue batch."""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import msgspec
from redis.exceptions import ResponseError

from streamq import _keys
from streamq._codec import encode
from streamq._connection import broker_errors
from streamq._errors import InvalidJob
from streamq._handle import JobHandle
from streamq._ids import random_job_id, validate_job_id
from streamq._metrics import JOBS_ENQUEUED
from streamq._types import JobSpec, lane_of

if TYPE_CHECKING:
    from streamq._app import App

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


def _prepare(app: App, req: EnqueueRequest, now: float) -> tuple[str, str, str, list[Any]]:
    """Validates one request; returns (queue, id, name, script arguments)."""
    task = app.task_def(req.queue, req.name)
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
        result_ttl=task.result_ttl if task.result_ttl is not None else app.result_ttl,
        created_at=now,
        request_id=req.request_id,
        parent=parent_id,
        parent_queue=parent_queue,
    )
    args = [
        job_id,
        task.name,
        lane,
        encode(spec),
        max(int(delay * 1000), 0),
        max_attempts,
        int(task.lease * 1000),
        task.max_deliveries,
        -1 if req.dedup_ttl is None else int(req.dedup_ttl * 1000),
        parent_id or "",
    ]
    return queue, job_id, task.name, args


async def enqueue_batch(
    app: App, requests: list[EnqueueRequest], *, durable: bool = False
) -> list[JobHandle]:
    now = time.time()
    prepared = [_prepare(app, req, now) for req in requests]
    await app.connect()
    by_queue: dict[str, list[int]] = defaultdict(list)
    for index, (queue, _, _, _) in enumerate(prepared):
        by_queue[queue].append(index)
    handles: list[JobHandle | None] = [None] * len(prepared)
    for queue, indexes in by_queue.items():
        await app.register_queue(queue)
        keys = [_keys.events(queue), _keys.stats(queue), _keys.delayed(queue)]
        head = [_keys.prefix(queue), _keys.GROUP, app.events_maxlen]
        for start in range(0, len(indexes), _CHUNK):
            chunk = indexes[start : start + _CHUNK]
            args = head + [a for i in chunk for a in prepared[i][3]]
            with broker_errors(f"enqueueing on {queue}"):
                replies = await app.scripts.call("enqueue", keys, args)
            for i, (state, dup) in zip(chunk, replies, strict=True):
                _, job_id, name, _ = prepared[i]
                handles[i] = JobHandle(
                    app,
                    queue,
                    job_id,
                    name=name,
                    deduplicated=bool(dup),
                    state_at_enqueue=state.decode(),
                )
                if not dup:
                    JOBS_ENQUEUED.labels(queue, name).inc()
    if durable:
        await _wait_for_aof(app)
    return [h for h in handles if h is not None]


async def _wait_for_aof(app: App) -> None:
    """Waits until the local AOF holds the writes (WAITAOF, Redis 7.2+ and Valkey)."""
    url = app.url or ""
    if url in _waitaof_missing:
        return
    try:
        with broker_errors("waiting for the AOF"):
            await app.redis.execute_command("WAITAOF", 1, 0, 5000)
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
