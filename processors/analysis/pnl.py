"""Profit and loss per token with the average-cost method, and the portfolio statistics.

Per token, in time order: a buy adds its tokens and the SOL paid to the position's cost; a sell
realises ``proceeds - average cost * tokens sold`` and takes that basis out of the position.
Tokens sold beyond what the swaps show bought (airdrops, transfers in) carry no basis. What is
still held is valued at the current price (SOL per whole token) for the unrealised PnL. Network
fees are kept apart: ``net = realised + unrealised - fees``.

All sums are exact (integers and fractions of lamports) and rounded to float once, at the end,
so the same trades always give bit-identical figures whatever their grouping.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from fractions import Fraction

import msgspec

from processors.models import LAMPORTS_PER_SOL, Swap

__all__ = ["PnlReport", "PortfolioStats", "TokenPnl", "compute_pnl"]


class TokenPnl(msgspec.Struct, frozen=True, kw_only=True):
    mint: str
    buys: int
    sells: int
    bought_sol: float
    sold_sol: float
    fees_sol: float
    remaining: int  # raw units still held according to the swaps
    decimals: int
    average_cost_sol: float | None  # SOL per whole token of what is still held
    current_price_sol: float | None
    realised_sol: float
    unrealised_sol: float  # 0 when nothing is held or no price is known
    net_sol: float
    priced: bool  # False if tokens are held but no current price was given
    first_trade: int
    last_trade: int


class PortfolioStats(msgspec.Struct, frozen=True, kw_only=True):
    tokens: int
    trades: int
    profitable_tokens: int
    losing_tokens: int
    win_rate: float  # profitable tokens / tokens traded (net PnL per token)
    total_bought_sol: float
    total_sold_sol: float
    realised_sol: float
    unrealised_sol: float
    fees_sol: float
    net_sol: float
    median_token_net_sol: float
    average_token_net_sol: float
    best_token: str | None
    worst_token: str | None


class PnlReport(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    tokens: list[TokenPnl]  # by net PnL, best first
    stats: PortfolioStats


# (token row, realised, unrealised, fees, lamports in, lamports out), exact for the totals.
_Row = tuple[TokenPnl, Fraction, Fraction, int, int, int]


class _Position:
    __slots__ = (
        "buys",
        "cost",
        "decimals",
        "fees",
        "first",
        "in_",
        "last",
        "out",
        "qty",
        "realised",
        "sells",
    )

    def __init__(self, decimals: int) -> None:
        self.decimals = decimals
        self.qty = 0
        self.cost = Fraction(0)
        self.realised = Fraction(0)
        self.fees = 0
        self.buys = self.sells = self.in_ = self.out = 0
        self.first = self.last = 0


def _sol(lamports: Fraction | int) -> float:
    return float(Fraction(lamports) / LAMPORTS_PER_SOL)


def compute_pnl(
    wallet: str, swaps: Iterable[Swap], prices: Mapping[str, float | None] | None = None
) -> PnlReport:
    """PnL of ``wallet`` per token and overall; ``prices`` maps mint -> SOL per whole token."""
    prices = prices or {}
    by_mint: dict[str, list[Swap]] = defaultdict(list)
    for s in swaps:
        by_mint[s.mint].append(s)

    rows: list[_Row] = []
    trades = 0
    for mint, items in by_mint.items():
        items.sort(key=lambda s: (s.timestamp, s.signature))
        pos = _Position(items[0].decimals)
        pos.first, pos.last = items[0].timestamp, items[-1].timestamp
        for s in items:
            trades += 1
            pos.fees += s.fee_lamports
            if s.side == "buy":
                pos.qty += s.token_amount
                pos.cost += s.sol_lamports
                pos.buys += 1
                pos.in_ += s.sol_lamports
                continue
            covered = min(s.token_amount, pos.qty)
            basis = pos.cost * covered / pos.qty if pos.qty else Fraction(0)
            pos.realised += s.sol_lamports - basis
            pos.cost -= basis
            pos.qty -= covered
            pos.sells += 1
            pos.out += s.sol_lamports
        price = prices.get(mint)
        unrealised = Fraction(0)
        if pos.qty and price is not None:
            value = Fraction(price) * pos.qty / 10**pos.decimals * LAMPORTS_PER_SOL
            unrealised = value - pos.cost
        net = pos.realised + unrealised - pos.fees
        avg = pos.cost / pos.qty * 10**pos.decimals if pos.qty else None
        rows.append(
            (
                TokenPnl(
                    mint=mint,
                    buys=pos.buys,
                    sells=pos.sells,
                    bought_sol=_sol(pos.in_),
                    sold_sol=_sol(pos.out),
                    fees_sol=_sol(pos.fees),
                    remaining=pos.qty,
                    decimals=pos.decimals,
                    average_cost_sol=_sol(avg) if avg is not None else None,
                    current_price_sol=price,
                    realised_sol=_sol(pos.realised),
                    unrealised_sol=_sol(unrealised),
                    net_sol=_sol(net),
                    priced=not pos.qty or price is not None,
                    first_trade=pos.first,
                    last_trade=pos.last,
                ),
                pos.realised,
                unrealised,
                pos.fees,
                pos.in_,
                pos.out,
            )
        )
    rows.sort(key=lambda r: (-r[0].net_sol, r[0].mint))
    return PnlReport(wallet=wallet, tokens=[r[0] for r in rows], stats=_stats(rows, trades))


def _stats(rows: list[_Row], trades: int) -> PortfolioStats:
    realised = sum((r[1] for r in rows), Fraction(0))
    unrealised = sum((r[2] for r in rows), Fraction(0))
    fees = sum(r[3] for r in rows)
    nets = [r[1] + r[2] - r[3] for r in rows]
    wins = sum(1 for n in nets if n > 0)
    losses = sum(1 for n in nets if n < 0)
    tokens = [r[0] for r in rows]
    return PortfolioStats(
        tokens=len(rows),
        trades=trades,
        profitable_tokens=wins,
        losing_tokens=losses,
        win_rate=wins / len(rows) if rows else 0.0,
        total_bought_sol=_sol(sum(r[4] for r in rows)),
        total_sold_sol=_sol(sum(r[5] for r in rows)),
        realised_sol=_sol(realised),
        unrealised_sol=_sol(unrealised),
        fees_sol=_sol(fees),
        net_sol=_sol(realised + unrealised - fees),
        median_token_net_sol=_sol(statistics.median(nets)) if nets else 0.0,
        average_token_net_sol=_sol(sum(nets, Fraction(0)) / len(nets)) if nets else 0.0,
        best_token=tokens[0].mint if tokens else None,
        worst_token=tokens[-1].mint if tokens else None,
    )
