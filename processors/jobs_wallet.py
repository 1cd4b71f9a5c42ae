"""``wallet-operations``: ``sync-wallet`` (incremental, capped for high-frequency wallets, deep
for the similarity flow) and ``fetch-balances`` (behind the 30 s balance cache)."""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread

import streamq
from processors.config import CACHE, JOBS, LOCKS, SYNC
from processors.jobs_support import (
    Runtime,
    backoff_of,
    mapped_errors,
    read_cached_balances,
    wallet_lock,
    write_cached_balances,
)
from processors.jobs_types import FetchBalances, SyncWallet
from processors.models import WalletBalances
from processors.solana import validate_address
from processors.wallet_service import (
    SyncResult,
    analyze_wallet_behavior,
    analyze_wallet_pnl,
    sync_wallet,
)

__all__ = ["register_wallet_jobs", "task_options"]

log = logging.getLogger(__name__)


def task_options(rt: Runtime, name: str, **overrides: Any) -> dict[str, Any]:
    """streamq task options for one of the plans' jobs (``processors.config.JOBS``)."""
    spec = JOBS[name]
    options: dict[str, Any] = {
        "queue": rt.queue(spec.queue),
        "priority": spec.priority,
        "timeout": spec.timeout,
        "max_attempts": spec.max_attempts,
        "backoff": backoff_of(name, rt.settings.backoff_scale),
        # The plans' staleAfter is the lease: a job whose worker stops renewing it that long
        # is taken over by another worker.
        "lease": spec.stale_after or 30.0,
    }
    options.update(overrides)
    return options


async def swap_cap(rt: Runtime, wallet: str, asked: int | None) -> int | None:
    """02's signature cap: wallets classified high-frequency sync only their newest swaps."""
    if asked is not None:
        return asked
    known = await anyio.to_thread.run_sync(rt.store.behavior, wallet)
    if known is not None and known.classification == "high_frequency":
        return SYNC.dashboard_max_swaps
    return None


def register_wallet_jobs(app: streamq.App, rt: Runtime) -> None:
    @app.task("sync-wallet", **task_options(rt, "sync-wallet"))
    async def sync_wallet_job(ctx: streamq.Context, req: SyncWallet) -> SyncResult:
        """Incremental sync of one wallet under its lock; ``deep`` also refreshes PnL and
        behaviour (04's Operation A)."""
        with mapped_errors():
            validate_address(req.wallet)
            async with wallet_lock(rt, req.wallet, ttl=LOCKS.sync_wallet_ttl):
                cap = await swap_cap(rt, req.wallet, req.max_swaps)
                await ctx.progress(10, "fetching swaps" + (f" (newest {cap})" if cap else ""))
                result = await sync_wallet(
                    rt.store, rt.providers.chain, req.wallet, force=req.force, max_swaps=cap,
                    progress=_scaled(ctx, 10, 70 if req.deep else 100),
                )  # fmt: skip
                if req.deep:
                    await analyze_wallet_pnl(rt.store, rt.providers.tokens, req.wallet)
                    await ctx.progress(85, "PnL done")
                    await analyze_wallet_behavior(rt.store, rt.providers.tokens, req.wallet)
                    await ctx.progress(100, "behaviour done")
        log.info("synced wallet %s: %d new of %d fetched (job %s, queue %s, attempt %d)",
                 req.wallet, result.new_swaps, result.fetched, ctx.job_id, ctx.queue,
                 ctx.attempt)  # fmt: skip
        return result

    @app.task(
        "fetch-balances", **task_options(rt, "fetch-balances", result_ttl=2 * CACHE.balances_ttl)
    )
    async def fetch_balances_job(ctx: streamq.Context, req: FetchBalances) -> WalletBalances:
        """One wallet's balances: from the 30 s cache, else the chain (then cached)."""
        with mapped_errors():
            validate_address(req.wallet)
            hit = await read_cached_balances(rt, req.wallet)
            if hit is not None:
                return hit
            balances = await rt.providers.chain.get_balances(req.wallet)
        await write_cached_balances(rt, balances, CACHE.balances_ttl)
        return balances


def _scaled(ctx: streamq.Context, low: float, high: float) -> Any:
    """A progress callback mapping a step's 0..100 onto ``low..high`` of the job."""

    async def report(pct: float, message: str) -> None:
        await ctx.progress(low + (high - low) * pct / 100.0, message)

    return report
