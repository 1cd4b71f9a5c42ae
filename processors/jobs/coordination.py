"""The coordination the plans ask for, shared by the job modules: per-wallet and named locks,
flows, recurring jobs, and the alert queue's rate limit.

Each coordination primitive of streamq is called from exactly one function here:
``streamq.Lock`` (``named_lock``), ``App.enqueue_flow`` (``enqueue_flow``), ``App.schedule``
(``schedule``) and ``App.rate_limit`` (``ensure_setup``); ``streamq.cached`` is in
``processors.jobs.balance_cache``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio

import streamq
from processors.config import POLYMARKET_ALERTS
from processors.runtime import Runtime, runtime_of

__all__ = [
    "LIMIT_PICKUP",
    "enqueue_flow",
    "ensure_setup",
    "named_lock",
    "schedule",
    "wallet_lock",
]


def wallet_lock(
    rt: Runtime, wallet: str, *, ttl: float
) -> contextlib.AbstractAsyncContextManager[None]:
    """Holds the wallet's lock: no two analyses of one wallet interleave their writes."""
    return named_lock(rt, f"wallet:{wallet}", ttl=ttl)


@contextlib.asynccontextmanager
async def named_lock(rt: Runtime, name: str, *, ttl: float) -> AsyncIterator[None]:
    """Holds the deployment-wide lock ``name`` (a ``streamq.Lock``, renewed while held).

    Waits up to ``settings.lock_wait`` seconds; if the lock stays taken the job is handed back
    with ``streamq.Retry`` (the plans' "already in progress" is a retry, not a failure). A lock
    lost while held raises ``streamq.LockError`` (the job fails and is retried).
    """
    lock_name = f"{rt.settings.namespace}:{name}"
    lock = streamq.Lock(rt.app, lock_name, ttl=ttl, timeout=rt.settings.lock_wait)
    try:
        await lock.acquire()
    except streamq.LockError as exc:
        raise streamq.Retry(f"{name} is busy: {exc}", delay=1.0) from exc
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            lost = lock.lost
            released = await lock.release()
    if lost or not released:
        raise streamq.LockError(f"lock {name} was lost while held")


async def enqueue_flow(
    rt: Runtime,
    parent: streamq.EnqueueRequest,
    children: list[streamq.EnqueueRequest],
) -> streamq.JobHandle:
    """A parent held back by the broker until all its children are finished, however they
    ended; returns the parent's handle.

    The broker's own ``threshold`` policy counts jobs; the plans' threshold counts wallets (a
    wallet whose sync or balance fetch failed is one failure, not two), so the flow runs the
    parent regardless (``ignore``) and the parent applies the wallet threshold itself.
    """
    root = _flow_node(parent, policy="ignore", children=[_flow_node(c) for c in children])
    return await rt.app.enqueue_flow(root)


def _flow_node(request: streamq.EnqueueRequest, **extra: Any) -> streamq.Flow:
    return streamq.Flow(
        name=request.name,
        payload=request.payload,
        id=request.id,
        queue=request.queue,
        priority=request.priority,
        request_id=request.request_id,
        **extra,
    )


def schedule(
    app: streamq.App, name: str, *, cron: str | None, every: float | None, overlap: bool
) -> None:
    """Registers a recurring job with streamq's scheduler (every worker runs one; each tick's
    job id derives from the tick, so a tick fires once however many run)."""
    when: dict[str, Any] = {"cron": cron, "tz": "UTC"} if cron is not None else {"every": every}
    app.schedule(name, {}, overlap=overlap, **when)


# Workers re-read a queue's rate limit about once a second; jobs enqueued sooner after the
# limit is first written could start before any worker knows of it.
LIMIT_PICKUP = 1.5


async def ensure_setup(app: streamq.App) -> bool:
    """What needs Redis once per deployment: the alert queue's rate limit (kept in Redis, so
    it binds every worker). Idempotent and cheap; called by the routes, the demo and the
    anomaly batch (the producer of alerts), so a worker-only deployment sets it too.
    Returns True when this call wrote it (the caller holds alerts back ``LIMIT_PICKUP``)."""
    rt = runtime_of(app)
    if rt.setup_done:
        return False
    settings = rt.settings
    await app.rate_limit(rt.queue(POLYMARKET_ALERTS), settings.alert_limit, settings.alert_window)
    rt.setup_done = True
    return True
