"""01's maintenance schedules, on ``enrichment-operations`` at maintenance priority:

- ``cleanup-old-cache`` (02:00 daily): forgets similarity results older than
  ``CACHE.results_ttl`` (what ``GET /api/v1/results/{requestId}`` serves) and token metadata
  nobody has fetched for ``CACHE.token_info_retention``;
- ``refresh-token-metadata`` (every 6 hours): fetches again, in provider-sized batches, the
  stored token metadata older than ``CACHE.token_info_max_age``, so analyses find it fresh.

Each keeps a record of its last runs, as the plans' ``removeOnComplete`` / ``removeOnFail``
(5 / 10 and 3 / 5): a capped list per outcome in the deployment's Redis keys, read by
``GET /api/v1/admin/maintenance``. A run counts as failed when it will not be retried.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import anyio.to_thread
import msgspec

import streamq
from processors.config import CACHE, JOBS
from processors.jobs.signals import mapped_errors
from processors.jobs.types import CleanupOutcome, Maintenance, RefreshOutcome
from processors.models import TokenInfo
from processors.runtime import Runtime, runtime_of
from processors.services.wallet import token_infos

__all__ = ["MaintenanceRun", "cleanup_old_cache_job", "maintenance_runs", "refresh_tokens_job"]

Outcome = Literal["completed", "failed"]
Done = TypeVar("Done", CleanupOutcome, RefreshOutcome)


class MaintenanceRun(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    attempt: int
    started_at: float
    finished_at: float
    outcome: Outcome
    result: dict[str, int] | None = None  # the run's outcome counts
    error: str | None = None


_encode = msgspec.json.Encoder().encode
_decode_run = msgspec.json.Decoder(MaintenanceRun).decode


def _runs_key(rt: Runtime, name: str, outcome: Outcome) -> str:
    return rt.key("maintenance", name, outcome)


async def _record(rt: Runtime, name: str, run: MaintenanceRun) -> None:
    spec = JOBS[name]
    keep = spec.keep_completed if run.outcome == "completed" else spec.keep_failed
    key = _runs_key(rt, name, run.outcome)
    async with (await rt.redis()).pipeline(transaction=True) as pipe:
        pipe.lpush(key, _encode(run))
        pipe.ltrim(key, 0, max(0, (keep or 1) - 1))
        await pipe.execute()


async def maintenance_runs(rt: Runtime, name: str, outcome: Outcome) -> list[MaintenanceRun]:
    """The kept runs of maintenance job ``name`` with ``outcome``, newest first."""
    raw = await (await rt.redis()).lrange(_runs_key(rt, name, outcome), 0, -1)
    return [_decode_run(r) for r in raw]


def _clock(req: Maintenance) -> int:
    """The time a run judges ages by: the payload's ``now`` (tests), else the wall clock."""
    return int(time.time()) if req.now is None else req.now


async def _recorded(
    ctx: streamq.Context,
    req: Maintenance,
    work: Callable[[streamq.Context, Runtime, int], Awaitable[Done]],
) -> Done:
    """Runs ``work(ctx, rt, now)`` and records the run in its outcome's list. A failure is
    recorded when the broker will not try again (last attempt, or final)."""
    rt = runtime_of(ctx.app)
    now = _clock(req)
    started = time.time()

    async def record(
        outcome: Outcome, result: dict[str, int] | None = None, error: str | None = None
    ) -> None:
        run = MaintenanceRun(
            job_id=ctx.job_id,
            attempt=ctx.attempt,
            started_at=started,
            finished_at=time.time(),
            outcome=outcome,
            result=result,
            error=error,
        )
        await _record(rt, ctx.name, run)

    try:
        done = await work(ctx, rt, now)
    except BaseException as exc:
        final = isinstance(exc, streamq.Fatal) or ctx.attempt >= ctx.job.max_attempts
        if final and not isinstance(exc, anyio.get_cancelled_exc_class()):
            with anyio.CancelScope(shield=True):
                await record("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    await record("completed", msgspec.to_builtins(done))
    return done


async def cleanup_old_cache_job(ctx: streamq.Context, req: Maintenance) -> CleanupOutcome:
    """``cleanup-old-cache``: forgets expired results and long-unused token metadata."""
    return await _recorded(ctx, req, _cleanup_old_cache)


async def refresh_tokens_job(ctx: streamq.Context, req: Maintenance) -> RefreshOutcome:
    """``refresh-token-metadata``: fetches again the stored token metadata that has gone stale."""
    return await _recorded(ctx, req, _refresh_tokens)


async def _cleanup_old_cache(ctx: streamq.Context, rt: Runtime, now: int) -> CleanupOutcome:
    store = rt.store
    results = await anyio.to_thread.run_sync(
        store.delete_similarity_before, now - int(CACHE.results_ttl)
    )
    await ctx.progress(50, f"{results} similarity results past their TTL removed")
    tokens = await anyio.to_thread.run_sync(
        store.delete_token_infos_before, now - int(CACHE.token_info_retention)
    )
    await ctx.progress(100, f"{tokens} unused token records removed")
    return CleanupOutcome(similarity_results=results, token_infos=tokens)


async def _refresh_tokens(ctx: streamq.Context, rt: Runtime, now: int) -> RefreshOutcome:
    max_age = CACHE.token_info_max_age
    stale = await anyio.to_thread.run_sync(
        lambda: rt.store.stale_token_mints(now - int(max_age), limit=CACHE.refresh_limit)
    )
    await ctx.progress(5, f"{len(stale)} stale tokens")
    done = 0

    async def on_batch(got: dict[str, TokenInfo]) -> None:
        nonlocal done
        done += len(got)
        await ctx.progress(5 + 95 * done / max(1, len(stale)), f"{done} refreshed")

    with mapped_errors():
        fresh = await token_infos(
            rt.store, rt.providers.tokens, stale, max_age=max_age, now=now, on_batch=on_batch
        )
    # Mints the service no longer knows stay stale (cleanup-old-cache drops them later).
    refreshed = sum(1 for m in stale if m in fresh and fresh[m].fetched_at >= now)
    return RefreshOutcome(stale=len(stale), refreshed=refreshed)
