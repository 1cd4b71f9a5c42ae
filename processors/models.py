"""Data the providers return and the store keeps: swaps, balances, tokens, Polymarket, alerts.

Amounts that must add up exactly are integers in base units: lamports for SOL (1 SOL = 10**9
lamports) and raw token units (1 token = 10**decimals units). Prices are floats as the services
publish them. Timestamps are Unix seconds (int).

Schema evolution: new fields get defaults, so data written by an older version still decodes.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "LAMPORTS_PER_SOL",
    "Alert",
    "PolymarketMarket",
    "PolymarketTrade",
    "Side",
    "Swap",
    "SwapPage",
    "TokenBalance",
    "TokenInfo",
    "WalletBalances",
]

LAMPORTS_PER_SOL = 1_000_000_000

Side = Literal["buy", "sell"]


class Swap(msgspec.Struct, frozen=True, kw_only=True):
    """One token swap against SOL, seen from ``wallet``.

    ``sol_lamports`` is what the wallet paid (buy) or received (sell), without the network fee,
    which is ``fee_lamports``.
    """

    signature: str
    wallet: str
    mint: str
    side: Side
    token_amount: int
    decimals: int
    sol_lamports: int
    fee_lamports: int
    timestamp: int


class SwapPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of a wallet's swaps, newest first; ``before`` fetches the next (older) page."""

    swaps: list[Swap]
    before: str | None = None


class TokenBalance(msgspec.Struct, frozen=True, kw_only=True):
    mint: str
    amount: int
    decimals: int

    @property
    def ui_amount(self) -> float:
        return self.amount / float(10**self.decimals)


class WalletBalances(msgspec.Struct, frozen=True, kw_only=True):
    """Current holdings: native SOL in lamports and SPL tokens with a non-zero amount."""

    wallet: str
    lamports: int
    tokens: list[TokenBalance]
    fetched_at: int = 0


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Token metadata and market data (DexScreener's best pair for the token).

    ``price_sol`` and ``price_usd`` are per whole token (UI units); ``pair_created_at`` is when
    the first pool opened, which the behaviour analysis uses to spot snipers.
    """

    mint: str
    symbol: str = ""
    name: str = ""
    price_usd: float | None = None
    price_sol: float | None = None
    liquidity_usd: float | None = None
    market_cap_usd: float | None = None
    pair_created_at: int | None = None
    fetched_at: int = 0


class PolymarketMarket(msgspec.Struct, frozen=True, kw_only=True):
    condition_id: str
    question: str
    slug: str = ""
    outcomes: list[str] = msgspec.field(default_factory=lambda: ["Yes", "No"])
    outcome_prices: list[float] = msgspec.field(default_factory=list)
    volume_usd: float = 0.0
    liquidity_usd: float = 0.0
    end_date: int | None = None
    active: bool = True


class PolymarketTrade(msgspec.Struct, frozen=True, kw_only=True):
    """One fill: ``size`` shares of ``outcome`` at ``price`` USDC per share (0..1)."""

    trade_id: str
    wallet: str
    condition_id: str
    outcome: str
    side: Literal["BUY", "SELL"]
    size: float
    price: float
    timestamp: int
    title: str = ""

    @property
    def notional(self) -> float:
        return self.size * self.price


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """A message for humans, delivered by an AlertSink (a Discord-style webhook)."""

    id: str
    kind: str
    severity: Literal["info", "warning", "critical"]
    title: str
    description: str
    fields: dict[str, str] = msgspec.field(default_factory=dict)
    created_at: int = 0
