"""``enrichment-operations``: ``enrich-token-balances`` — token info database first, the rest
fetched in provider-sized batches; each batch of enriched holdings is published as it is ready
(03's progressive results: kept by ``processors.jobs.results``, announced by a progress event)."""

from __future__ import annotations

import anyio

import streamq
from processors.analysis.enrichment import EnrichedBatch, EnrichedWallet
from processors.jobs.balance_cache import cached_balances
from processors.jobs.results import append_batch, remember_request_job, reset_batches
from processors.jobs.signals import mapped_errors
from processors.jobs.types import EnrichBalances
from processors.models import WalletBalances
from processors.runtime import runtime_of
from processors.services.wallet import enrich_wallet_balances
from processors.solana import validate_addresses

__all__ = ["enrich_job"]


async def enrich_job(ctx: streamq.Context, req: EnrichBalances) -> dict[str, EnrichedWallet]:
    """``enrich-token-balances``: token metadata for the wallets' holdings; balances come with
    the request (the similarity flow) or from the balance cache (the dashboard)."""
    rt = runtime_of(ctx.app)
    with mapped_errors():
        wallets = validate_addresses(dict.fromkeys(req.wallets))
    # A new attempt publishes its batches from the start again.
    await reset_batches(rt, ctx.job_id)
    await remember_request_job(rt, req.request_id, "enrichment", ctx.queue, ctx.job_id)
    balances: dict[str, WalletBalances] = dict(req.balances or {})
    missing = [w for w in wallets if w not in balances]
    if missing:
        await ctx.progress(5, f"waiting for balances of {len(missing)} wallets")

        async def one(w: str) -> None:
            try:
                balances[w] = await cached_balances(rt, w)
            except streamq.JobFailed:
                pass  # that wallet is left out; the others are still worth enriching

        async with anyio.create_task_group() as tg:
            for w in missing:
                tg.start_soon(one, w)
    holdings = sum(len(b.tokens) for b in balances.values())
    ready = 0

    async def on_enriched(batch: EnrichedBatch) -> None:
        nonlocal ready
        await append_batch(rt, ctx.job_id, batch)
        ready += len(batch.tokens)
        pct = 10 + 85 * min(1.0, ready / max(1, holdings))
        await ctx.progress(
            pct, f"batch {batch.index} ready: {ready} of {holdings} holdings enriched"
        )

    await ctx.progress(10, f"enriching {holdings} holdings of {len(balances)} wallets")
    with mapped_errors():
        return await enrich_wallet_balances(
            rt.store, rt.providers.tokens, balances, on_enriched=on_enriched
        )
