"""Group concurrency: at most ``limit`` jobs of one group (say, one wallet) active at once in a
queue, across every worker. A job that finds its group full is put back for later without
spending an attempt (``Retry(count_attempt=False)``), so it never holds a worker while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from streamq import _keys
from streamq._connection import broker_errors
from streamq._errors import ConfigurationError, Retry

if TYPE_CHECKING:
    from streamq._context import Context

log = logging.getLogger(__name__)
R = TypeVar("R")


group_key = _keys.group


@contextlib.asynccontextmanager
async def group_slot(
    ctx: Context, group: str, limit: int = 1, *, retry_in: float = 0.5
) -> AsyncIterator[None]:
    """Holds one of ``limit`` slots of ``group`` on the job's queue while the block runs.

    When the group is full, raises ``Retry`` (without spending an attempt) so the job comes back
    after about ``retry_in`` seconds. The slot lives as long as the job's lease and is renewed
    while held, so a crashed worker's slot frees itself. Raises ``ConfigurationError`` for a
    limit below 1."""
    if limit < 1:
        raise ConfigurationError("a group's limit must be >= 1")
    broker = ctx.app.broker
    queue, job_id = ctx.queue, ctx.job_id
    lease_ms = max(int(ctx.job.lease * 1000), 100)
    with broker_errors(f"taking a slot of group {group}"):
        held, wait_ms = await broker.scripts.gate(
            queue, group, job_id, limit=limit, lease_ms=lease_ms
        )
    if not held:
        # Soon, but not all at once: waiters of one group spread over the retry window.
        delay = min(retry_in, max(wait_ms, 1) / 1000) * (0.5 + random.random())
        raise Retry(f"group {group} is at its limit of {limit}", delay=delay, count_attempt=False)

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease_ms / 3000)
            try:
                await broker.scripts.gate(queue, group, job_id, limit=limit, lease_ms=lease_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("renewing group slot %s failed: %s", group, exc)

    renewer = asyncio.create_task(renew(), name=f"group:{group}")
    try:
        yield
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        with contextlib.suppress(Exception):
            await broker.redis.zrem(group_key(queue, group), job_id)


def grouped(
    key: Callable[[Any], str], limit: int = 1, *, retry_in: float = 0.5
) -> Callable[[Callable[[Context, Any], Awaitable[R]]], Callable[[Context, Any], Awaitable[R]]]:
    """Decorates an async handler so at most ``limit`` jobs with the same ``key(payload)`` run
    at once (put it under ``@app.task``)::

        @app.task("sync-wallet", queue="wallet-operations")
        @streamq.grouped(lambda req: req.wallet, limit=1)
        async def sync_wallet(ctx, req: SyncWallet) -> SyncResult: ...
    """
    if limit < 1:
        raise ConfigurationError("a group's limit must be >= 1")

    def decorate(
        fn: Callable[[Context, Any], Awaitable[R]],
    ) -> Callable[[Context, Any], Awaitable[R]]:
        @functools.wraps(fn)
        async def run(ctx: Context, payload: Any) -> R:
            async with group_slot(ctx, str(key(payload)), limit, retry_in=retry_in):
                return await fn(ctx, payload)

        return run

    return decorate
