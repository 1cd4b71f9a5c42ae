"""Trading behaviour: holding periods, pace, entry timing, and a classification.

A *holding period* starts when a token position opens (the wallet goes from holding none of it
to holding some) and ends when the swaps bring it back to zero. Entry timing needs each token's
launch time (its first pool's creation, from token metadata): a first buy within
``sniper_window`` seconds of launch is an early entry.

Classification, first rule that matches:

- ``high_frequency``: at least ``hf_trades_per_day`` trades per active day, or at least 100
  trades with a median gap of ``hf_median_gap`` seconds or less;
- ``sniper``: at least ``sniper_share`` of tokens entered early, median hold <= 1 hour;
- ``flipper``: 3+ completed holding periods with a median under ``flip_max_hold`` seconds;
- ``holder``: most tokens still held, or a median hold of ``holder_min_hold`` seconds or more;
- ``swing`` otherwise; ``inactive`` with no trades.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Literal

import msgspec

from processors.models import Swap

__all__ = ["BehaviorConfig", "BehaviorMetrics", "Classification", "analyze_behavior"]

Classification = Literal["high_frequency", "sniper", "flipper", "holder", "swing", "inactive"]
HOUR = 3600
DAY = 86_400


class BehaviorConfig(msgspec.Struct, frozen=True, kw_only=True):
    hf_trades_per_day: float = 50.0
    hf_median_gap: float = 120.0
    sniper_window: int = 300
    sniper_share: float = 0.5
    flip_max_hold: int = DAY
    holder_min_hold: int = 7 * DAY


class BehaviorMetrics(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    trades: int
    buys: int
    sells: int
    buy_sell_ratio: float | None  # buys / sells; None without sells
    unique_tokens: int
    tokens_bought_and_sold: int
    completed_holds: int
    open_positions: int
    median_hold_seconds: float | None
    average_hold_seconds: float | None
    share_holds_under_1h: float | None
    share_holds_under_1d: float | None
    trades_per_active_day: float
    median_gap_seconds: float | None  # between consecutive trades, all tokens
    early_entry_share: float | None  # None when no launch time is known
    first_trade: int | None
    last_trade: int | None
    classification: Classification
    reasons: list[str]


def analyze_behavior(
    wallet: str,
    swaps: Iterable[Swap],
    *,
    launch_times: Mapping[str, int | None] | None = None,
    config: BehaviorConfig | None = None,
) -> BehaviorMetrics:
    """Behaviour metrics and classification of ``wallet`` from its swaps."""
    cfg = config or BehaviorConfig()
    launch_times = launch_times or {}
    ordered = sorted(swaps, key=lambda s: (s.timestamp, s.signature))
    buys = sum(1 for s in ordered if s.side == "buy")
    sells = len(ordered) - buys

    held: dict[str, int] = defaultdict(int)
    opened: dict[str, int] = {}
    first_buy: dict[str, int] = {}
    sides: dict[str, set[str]] = defaultdict(set)
    holds: list[int] = []
    for s in ordered:
        sides[s.mint].add(s.side)
        if s.side == "buy":
            first_buy.setdefault(s.mint, s.timestamp)
            if held[s.mint] == 0:
                opened[s.mint] = s.timestamp
            held[s.mint] += s.token_amount
        elif held[s.mint] > 0:
            held[s.mint] = max(0, held[s.mint] - s.token_amount)
            if held[s.mint] == 0:
                holds.append(s.timestamp - opened.pop(s.mint))

    gaps = [b.timestamp - a.timestamp for a, b in pairwise(ordered)]
    span_days = max(1.0, (ordered[-1].timestamp - ordered[0].timestamp) / DAY) if ordered else 1.0
    early = [
        first_buy[m] - launch for m in first_buy if (launch := launch_times.get(m)) is not None
    ]
    metrics = BehaviorMetrics(
        wallet=wallet,
        trades=len(ordered),
        buys=buys,
        sells=sells,
        buy_sell_ratio=buys / sells if sells else None,
        unique_tokens=len(sides),
        tokens_bought_and_sold=sum(1 for v in sides.values() if len(v) == 2),
        completed_holds=len(holds),
        open_positions=sum(1 for q in held.values() if q > 0),
        median_hold_seconds=float(statistics.median(holds)) if holds else None,
        average_hold_seconds=statistics.fmean(holds) if holds else None,
        share_holds_under_1h=sum(h < HOUR for h in holds) / len(holds) if holds else None,
        share_holds_under_1d=sum(h < DAY for h in holds) / len(holds) if holds else None,
        trades_per_active_day=len(ordered) / span_days,
        median_gap_seconds=float(statistics.median(gaps)) if gaps else None,
        early_entry_share=(
            sum(0 <= d <= cfg.sniper_window for d in early) / len(early) if early else None
        ),
        first_trade=ordered[0].timestamp if ordered else None,
        last_trade=ordered[-1].timestamp if ordered else None,
        classification="inactive",
        reasons=[],
    )
    label, reasons = classify(metrics, cfg)
    return msgspec.structs.replace(metrics, classification=label, reasons=reasons)


def classify(m: BehaviorMetrics, cfg: BehaviorConfig) -> tuple[Classification, list[str]]:
    """The classification of metrics ``m`` and the facts that decided it."""
    if m.trades == 0:
        return "inactive", ["no trades"]
    if m.trades_per_active_day >= cfg.hf_trades_per_day:
        return "high_frequency", [f"{m.trades_per_active_day:.0f} trades per active day"]
    if m.trades >= 100 and m.median_gap_seconds is not None:
        if m.median_gap_seconds <= cfg.hf_median_gap:
            return "high_frequency", [f"median gap {m.median_gap_seconds:.0f}s over {m.trades}"]
    hold = m.median_hold_seconds
    if (
        m.early_entry_share is not None
        and m.early_entry_share >= cfg.sniper_share
        and hold is not None
        and hold <= HOUR
    ):
        return "sniper", [
            f"{m.early_entry_share:.0%} of tokens bought within {cfg.sniper_window}s of launch",
            f"median hold {hold:.0f}s",
        ]
    if m.completed_holds >= 3 and hold is not None and hold < cfg.flip_max_hold:
        return "flipper", [f"{m.completed_holds} round trips, median hold {hold / HOUR:.1f}h"]
    if m.open_positions * 2 > m.unique_tokens or (hold is not None and hold >= cfg.holder_min_hold):
        return "holder", [f"{m.open_positions} of {m.unique_tokens} tokens still held"]
    return "swing", ["no dominant pattern"]
