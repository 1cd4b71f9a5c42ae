"""``wallet-operations``: ``sync-wallet`` (incremental, capped for high-frequency wallets, deep
for the similarity flow) and ``fetch-balances`` (behind the 30 s balance cache)."""

from __future__ import annotations

import logging

import anyio.to_thread

import streamq
from processors.config import CACHE, LOCKS, SYNC
from processors.jobs.balance_cache import read_cached_balances, write_cached_balances
from processors.jobs.coordination import wallet_lock
from processors.jobs.signals import mapped_errors
from processors.jobs.types import FetchBalances, SyncWallet
from processors.models import WalletBalances
from processors.runtime import Runtime, runtime_of
from processors.services.wallet import (
    Progress,
    SyncResult,
    analyze_wallet_behavior,
    analyze_wallet_pnl,
    sync_wallet,
)
from processors.solana import validate_address

__all__ = ["fetch_balances_job", "swap_cap", "sync_wallet_job"]

log = logging.getLogger(__name__)


async def sync_wallet_job(ctx: streamq.Context, req: SyncWallet) -> SyncResult:
    """``sync-wallet``: incremental sync of one wallet under its lock; ``deep`` also refreshes
    PnL and behaviour (04's Operation A)."""
    rt = runtime_of(ctx.app)
    with mapped_errors():
        validate_address(req.wallet)
        async with wallet_lock(rt, req.wallet, ttl=LOCKS.sync_wallet_ttl):
            cap = await swap_cap(rt, req.wallet, req.max_swaps)
            await ctx.progress(10, "fetching swaps" + (f" (newest {cap})" if cap else ""))
            result = await sync_wallet(
                rt.store,
                rt.providers.chain,
                req.wallet,
                force=req.force,
                max_swaps=cap,
                progress=_scaled(ctx, 10, 70 if req.deep else 100),
            )
            if req.deep:
                await analyze_wallet_pnl(rt.store, rt.providers.tokens, req.wallet)
                await ctx.progress(85, "PnL done")
                await analyze_wallet_behavior(rt.store, rt.providers.tokens, req.wallet)
                await ctx.progress(100, "behaviour done")
    log.info(
        "synced wallet %s: %d new of %d fetched (job %s, queue %s, attempt %d)",
        req.wallet,
        result.new_swaps,
        result.fetched,
        ctx.job_id,
        ctx.queue,
        ctx.attempt,
    )
    return result


async def fetch_balances_job(ctx: streamq.Context, req: FetchBalances) -> WalletBalances:
    """``fetch-balances``: one wallet's balances from the 30 s cache, else the chain (then
    cached)."""
    rt = runtime_of(ctx.app)
    with mapped_errors():
        validate_address(req.wallet)
        hit = await read_cached_balances(rt, req.wallet)
        if hit is not None:
            return hit
        balances = await rt.providers.chain.get_balances(req.wallet)
    await write_cached_balances(rt, balances, CACHE.balances_ttl)
    return balances


async def swap_cap(rt: Runtime, wallet: str, asked: int | None) -> int | None:
    """02's signature cap: wallets classified high-frequency sync only their newest swaps."""
    if asked is not None:
        return asked
    known = await anyio.to_thread.run_sync(rt.store.behavior, wallet)
    if known is not None and known.classification == "high_frequency":
        return SYNC.dashboard_max_swaps
    return None


def _scaled(ctx: streamq.Context, low: float, high: float) -> Progress:
    """A progress callback mapping a step's 0..100 onto ``low..high`` of the job."""

    async def report(pct: float, message: str) -> None:
        await ctx.progress(low + (high - low) * pct / 100.0, message)

    return report
