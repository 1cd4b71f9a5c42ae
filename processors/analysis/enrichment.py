"""Balances enriched with token metadata and USD value, and the plan of what to fetch.

The plans' enrichment is "database first": token info already stored and younger than
``max_age`` is reused, only the rest is fetched, in batches the service accepts (30 mints per
DexScreener call). The size of the job picks a strategy hint: ``small`` (one batch or a few),
``large`` (more than ``large`` mints: fetch in the background, progressively), ``massive``
(more than ``massive`` mints).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

from processors.models import LAMPORTS_PER_SOL, TokenInfo, WalletBalances

__all__ = [
    "BatchSource",
    "EnrichedBatch",
    "EnrichedToken",
    "EnrichedWallet",
    "EnrichmentPlan",
    "HeldToken",
    "OptimizationHint",
    "enrich_balances",
    "enriched_holdings",
    "plan_enrichment",
]

OptimizationHint = Literal["small", "large", "massive"]


class EnrichmentPlan(msgspec.Struct, frozen=True, kw_only=True):
    mints: list[str]  # every distinct mint asked about
    cached: list[str]  # fresh enough in the store
    batches: list[list[str]]  # what to fetch, in provider-sized batches
    hint: OptimizationHint


class EnrichedToken(msgspec.Struct, frozen=True, kw_only=True):
    mint: str
    amount: int
    decimals: int
    ui_amount: float
    symbol: str | None
    name: str | None
    price_usd: float | None
    value_usd: float | None


class EnrichedWallet(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    sol: float
    sol_value_usd: float | None
    tokens: list[EnrichedToken]  # by USD value, largest first; unpriced last
    tokens_value_usd: float
    total_value_usd: float | None  # None when the SOL price is unknown
    unpriced_tokens: int


BatchSource = Literal["store", "service", "unknown"]


class HeldToken(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    token: EnrichedToken


class EnrichedBatch(msgspec.Struct, frozen=True, kw_only=True):
    """One batch of a wallet set's holdings, enriched as soon as its token info was known:
    ``store`` (fresh in the database), ``service`` (one provider call), or ``unknown`` (the
    holdings the service knew nothing about, last). Every holding is in exactly one batch."""

    index: int
    source: BatchSource
    tokens: list[HeldToken]


def enriched_holdings(
    balances: Mapping[str, WalletBalances], infos: Mapping[str, TokenInfo], mints: Iterable[str]
) -> list[HeldToken]:
    """The holdings of ``mints`` (by wallet, then in balance order), enriched from ``infos``."""
    wanted = set(mints)
    subset = {
        w: msgspec.structs.replace(b, tokens=[t for t in b.tokens if t.mint in wanted])
        for w, b in balances.items()
    }
    enriched = enrich_balances(subset, infos, sol_usd=None)
    out: list[HeldToken] = []
    for w, b in subset.items():
        by_mint = {e.mint: e for e in enriched[w].tokens}
        out.extend(HeldToken(wallet=w, token=by_mint[t.mint]) for t in b.tokens)
    return out


def plan_enrichment(
    mints: Iterable[str],
    cached: Mapping[str, TokenInfo],
    *,
    now: int,
    max_age: float,
    batch_size: int = 30,
    large: int = 100,
    massive: int = 1000,
) -> EnrichmentPlan:
    """Which mints to fetch (not cached, or cached longer ago than ``max_age`` seconds)."""
    distinct = list(dict.fromkeys(mints))
    fresh = [m for m in distinct if m in cached and now - cached[m].fetched_at <= max_age]
    fresh_set = set(fresh)
    todo = [m for m in distinct if m not in fresh_set]
    hint: OptimizationHint = (
        "massive" if len(todo) > massive else "large" if len(todo) > large else "small"
    )
    return EnrichmentPlan(
        mints=distinct,
        cached=fresh,
        batches=[todo[i : i + batch_size] for i in range(0, len(todo), batch_size)],
        hint=hint,
    )


def enrich_balances(
    balances: Mapping[str, WalletBalances],
    infos: Mapping[str, TokenInfo],
    *,
    sol_usd: float | None,
) -> dict[str, EnrichedWallet]:
    """Each wallet's holdings with symbol, name, USD price and value where known."""
    out: dict[str, EnrichedWallet] = {}
    for wallet, bal in balances.items():
        tokens: list[EnrichedToken] = []
        for t in bal.tokens:
            info = infos.get(t.mint)
            price = info.price_usd if info else None
            ui = t.amount / 10**t.decimals
            tokens.append(
                EnrichedToken(
                    mint=t.mint,
                    amount=t.amount,
                    decimals=t.decimals,
                    ui_amount=ui,
                    symbol=info.symbol if info else None,
                    name=info.name if info else None,
                    price_usd=price,
                    value_usd=ui * price if price is not None else None,
                )
            )
        tokens.sort(key=lambda e: (e.value_usd is None, -(e.value_usd or 0.0), e.mint))
        sol = bal.lamports / LAMPORTS_PER_SOL
        sol_value = sol * sol_usd if sol_usd is not None else None
        tokens_value = sum(e.value_usd for e in tokens if e.value_usd is not None)
        out[wallet] = EnrichedWallet(
            wallet=wallet,
            sol=sol,
            sol_value_usd=sol_value,
            tokens=tokens,
            tokens_value_usd=tokens_value,
            total_value_usd=sol_value + tokens_value if sol_value is not None else None,
            unpriced_tokens=sum(1 for e in tokens if e.price_usd is None),
        )
    return out
