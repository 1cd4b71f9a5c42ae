"""``enrichment-operations``: ``enrich-token-balances`` — token info database first, the rest
fetched in provider-sized batches, each batch reported as progress as it lands (03)."""

from __future__ import annotations

import anyio

import streamq
from processors.analysis.enrichment import EnrichedWallet
from processors.jobs.balance_cache import cached_balances
from processors.jobs.signals import mapped_errors
from processors.jobs.types import EnrichBalances
from processors.models import TokenInfo, WalletBalances
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
    mints = {t.mint for b in balances.values() for t in b.tokens}
    seen = 0

    async def on_batch(got: dict[str, TokenInfo]) -> None:
        nonlocal seen
        seen += len(got)
        pct = 10 + 85 * min(1.0, seen / max(1, len(mints)))
        await ctx.progress(pct, f"{seen} of {len(mints)} tokens fetched")

    await ctx.progress(10, f"enriching {len(mints)} tokens of {len(balances)} wallets")
    with mapped_errors():
        return await enrich_wallet_balances(
            rt.store, rt.providers.tokens, balances, on_batch=on_batch
        )
