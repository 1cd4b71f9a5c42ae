"""Result cache: a job's result kept for ``ttl`` seconds under a caller's key, computed once
however many callers ask at the same time (the plans' ``balance:{wallet}`` for 30 s); and
``enqueue_verified``, enqueueing under ids the application derives without trusting a job
someone else put there.

A deduplicated job is checked against the payload asked for by comparing the payload the job
record already holds (read back once, only on dedup): a digest of its canonical form (builtins,
keys sorted) against the request's. Nothing extra is stored, so the check also covers jobs that
were enqueued by other means (the generic API, an older release).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from typing import TYPE_CHECKING, Any

import msgspec

from streamq import _admin, _keys
from streamq._codec import decode_any, encode
from streamq._connection import as_bytes, broker_errors
from streamq._enqueue import EnqueueRequest
from streamq._errors import ConfigurationError, PayloadMismatch
from streamq._ids import job_id
from streamq._tags import enqueue_tagged

if TYPE_CHECKING:
    from streamq._broker import Broker, HasBroker
    from streamq._context import Application
    from streamq._handle import JobHandle

log = logging.getLogger(__name__)

# After the job finishes, callers that missed the cache for this long still get its result from
# the job record (dedup) instead of starting another job; a failure is shared for as long.
_SHARE_FINISHED = 5.0


# Callers in one process that miss at the same time share one wait (not one Redis connection
# each); across processes they share the job through its id.
_inflight: weakref.WeakKeyDictionary[Broker, dict[str, asyncio.Future[Any]]] = (
    weakref.WeakKeyDictionary()
)


cache_key = _keys.cache


async def cached(
    app: Application,
    key: str,
    ttl: float,
    request: EnqueueRequest,
    *,
    timeout: float | None = 30.0,
) -> Any:
    """The result cached under ``key``, else the result of running ``request`` (then cached for
    ``ttl`` seconds). Concurrent callers share one job: its id is derived from ``key`` unless the
    request gives one. Results come back as builtins (as from ``JobHandle.result``).

    A job that already holds that id with a different payload (planted by someone else) is
    never used: ``PayloadMismatch`` is raised instead of returning its result.

    Raises what enqueueing and ``JobHandle.result`` raise: ``InvalidJob`` and its subclasses
    (``PayloadMismatch`` among them), ``JobFailed``, ``JobCancelled``, ``TimeoutError``,
    ``BrokerUnavailable``."""
    if not ttl > 0:
        raise ConfigurationError("cache ttl must be > 0 seconds")
    broker, registry = app.broker, app.registry
    await broker.connect()
    queue = request.queue or registry.task_def(None, request.name).queue
    rkey = cache_key(queue, key)
    with broker_errors(f"reading cache {key}"):
        raw = await broker.redis.get(rkey)
    if raw is not None:
        return decode_any(as_bytes(raw))
    waiting = _inflight.setdefault(broker, {})
    shared = waiting.get(rkey)
    if shared is not None:
        return await asyncio.shield(shared)
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    waiting[rkey] = future
    try:
        result = await _compute(app, key, ttl, request, rkey, timeout)
    except asyncio.CancelledError:
        future.cancel()
        raise
    except Exception as exc:
        future.set_exception(exc)
        # Retrieved here so an exception nobody else awaited is not reported as lost.
        future.exception()
        raise
    else:
        future.set_result(result)
        return result
    finally:
        waiting.pop(rkey, None)


async def _compute(
    app: Application,
    key: str,
    ttl: float,
    request: EnqueueRequest,
    rkey: str,
    timeout: float | None,
) -> Any:
    job = msgspec.structs.replace(
        request,
        id=request.id or job_id("cached", key),
        dedup_ttl=request.dedup_ttl if request.dedup_ttl is not None else min(ttl, _SHARE_FINISHED),
    )
    (handle,) = await enqueue_verified(app, [job])
    result = await handle.result(timeout=timeout)
    with broker_errors(f"writing cache {key}"):
        await app.broker.redis.set(rkey, encode(result), px=max(int(ttl * 1000), 1))
    return result


def payload_digest(payload: Any) -> str:
    """A digest of ``payload``'s canonical form: equal for equal payloads, whatever their
    key order or whether they are Structs or the builtins a job record decodes to."""
    canonical = msgspec.json.encode(msgspec.to_builtins(payload), order="sorted")
    return hashlib.sha256(canonical).hexdigest()


async def enqueue_verified(app: Application, requests: list[EnqueueRequest]) -> list[JobHandle]:
    """Enqueues ``requests`` (as :meth:`App.enqueue_many`) whose ids the application derives,
    and checks every one that deduplicated onto an existing job: that job must hold the
    payload asked for, else it was put there by someone else and is not reused.

    Raises ``PayloadMismatch`` (after enqueueing the requests that were new), and what
    enqueueing raises: ``InvalidJob`` and its subclasses, ``QueueFull``, ``BrokerUnavailable``."""
    registry = app.registry
    digests = [
        payload_digest(registry.task_def(r.queue, r.name).coerce(r.payload)) for r in requests
    ]
    handles = await enqueue_tagged(app.broker, registry, requests)
    for request, handle, digest in zip(requests, handles, digests, strict=True):
        if not handle.deduplicated:
            continue
        existing = await _admin.read_job(app.broker, handle.queue, handle.id)
        # A record gone already (expired) has no payload to trust; its handle finds nothing.
        if existing is not None and (
            existing.name != request.name or payload_digest(existing.payload) != digest
        ):
            log.warning(
                "job %s on %s (%s) deduplicated onto a job with another payload",
                handle.id,
                handle.queue,
                existing.name,
                extra={"job_id": handle.id, "queue": handle.queue},
            )
            raise PayloadMismatch(handle.queue, handle.id, existing.name)
    return handles


async def invalidate(app: HasBroker, key: str, queue: str) -> bool:
    """Drops the cached result under ``key`` on ``queue``; True if there was one."""
    broker = app.broker
    await broker.connect()
    with broker_errors(f"invalidating cache {key}"):
        return bool(await broker.redis.delete(cache_key(queue, key)))
