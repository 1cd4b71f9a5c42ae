"""Result cache: a job's result kept for ``ttl`` seconds under a caller's key, computed once
however many callers ask at the same time (the plans' ``balance:{wallet}`` for 30 s)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

import msgspec

from streamq import _keys
from streamq._codec import decode_any, encode
from streamq._connection import as_bytes, broker_errors
from streamq._enqueue import EnqueueRequest, enqueue_batch
from streamq._errors import ConfigurationError
from streamq._ids import job_id

if TYPE_CHECKING:
    from streamq._broker import Broker, HasBroker
    from streamq._context import Application

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

    Raises what enqueueing and ``JobHandle.result`` raise: ``InvalidJob`` and its subclasses,
    ``JobFailed``, ``JobCancelled``, ``TimeoutError``, ``BrokerUnavailable``."""
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
    (handle,) = await enqueue_batch(app.broker, app.registry, [job])
    result = await handle.result(timeout=timeout)
    with broker_errors(f"writing cache {key}"):
        await app.broker.redis.set(rkey, encode(result), px=max(int(ttl * 1000), 1))
    return result


async def invalidate(app: HasBroker, key: str, queue: str) -> bool:
    """Drops the cached result under ``key`` on ``queue``; True if there was one."""
    broker = app.broker
    await broker.connect()
    with broker_errors(f"invalidating cache {key}"):
        return bool(await broker.redis.delete(cache_key(queue, key)))
