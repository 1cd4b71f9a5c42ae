"""Polymarket: whale ranking and per-trade anomaly scoring.

**Whales** are ranked by USDC volume over the trades given; ties by trade count.

**Anomalies.** Each trade is compared with three baselines and each comparison gives a component
score, scaled so that 0.5 is the alert threshold (``score = max`` of the components):

- ``size_vs_wallet``: how many robust standard deviations (median / MAD of log notional) the
  trade is above the wallet's *other* trades; needs ``min_wallet_history`` of them. A whale
  betting big is normal for that whale; a small trader betting 50x is not.
- ``fresh_wallet``: a wallet with fewer than ``min_wallet_history`` other trades betting a large
  multiple of the market's median trade.
- ``price_dislocation``: distance between the trade's price and the median price of the
  ``reference_trades`` nearest trades (in time) on the same market and outcome.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence

import msgspec

from processors.models import PolymarketTrade

__all__ = ["AnomalyConfig", "AnomalyScore", "Whale", "rank_whales", "score_trades"]


class Whale(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    rank: int
    volume_usd: float
    trades: int
    markets: int
    average_trade_usd: float
    largest_trade_usd: float
    first_trade: int
    last_trade: int


class AnomalyConfig(msgspec.Struct, frozen=True, kw_only=True):
    wallet_z: float = 4.0  # robust z at which size_vs_wallet reaches 0.5
    min_wallet_history: int = 4
    min_mad: float = 0.5  # floor on the log-size MAD, so near-identical histories do not explode
    fresh_multiple: float = 50.0  # x market median at which fresh_wallet reaches 0.5
    price_gap: float = 0.12  # price distance at which price_dislocation reaches 0.5
    reference_trades: int = 10
    threshold: float = 0.5


class AnomalyScore(msgspec.Struct, frozen=True, kw_only=True):
    trade_id: str
    wallet: str
    condition_id: str
    timestamp: int
    notional_usd: float
    score: float
    flagged: bool
    reasons: list[str]  # components at or above the threshold, strongest first
    components: dict[str, float]


def rank_whales(
    trades: Iterable[PolymarketTrade], *, top: int = 50, min_volume_usd: float = 0.0
) -> list[Whale]:
    """The ``top`` wallets by volume (at least ``min_volume_usd``)."""
    agg: dict[str, list[PolymarketTrade]] = defaultdict(list)
    for t in trades:
        agg[t.wallet].append(t)
    rows = []
    for wallet, ts in agg.items():
        volume = sum(t.notional for t in ts)
        if volume >= min_volume_usd:
            rows.append((volume, len(ts), wallet, ts))
    rows.sort(key=lambda r: (-r[0], -r[1], r[2]))
    return [
        Whale(
            wallet=wallet,
            rank=i + 1,
            volume_usd=round(volume, 2),
            trades=n,
            markets=len({t.condition_id for t in ts}),
            average_trade_usd=round(volume / n, 2),
            largest_trade_usd=round(max(t.notional for t in ts), 2),
            first_trade=min(t.timestamp for t in ts),
            last_trade=max(t.timestamp for t in ts),
        )
        for i, (volume, n, wallet, ts) in enumerate(rows[:top])
    ]


def _robust(values: Sequence[float], floor: float) -> tuple[float, float]:
    med = statistics.median(values)
    mad = statistics.median(abs(v - med) for v in values)
    return med, max(1.4826 * mad, floor)


def score_trades(
    trades: Sequence[PolymarketTrade],
    context: Iterable[PolymarketTrade] = (),
    *,
    config: AnomalyConfig | None = None,
) -> list[AnomalyScore]:
    """Score ``trades`` against baselines from ``trades`` + ``context`` (each trade left out)."""
    cfg = config or AnomalyConfig()
    pool = {t.trade_id: t for t in context}
    pool.update((t.trade_id, t) for t in trades)
    by_wallet: dict[str, list[PolymarketTrade]] = defaultdict(list)
    by_market: dict[str, list[float]] = defaultdict(list)
    by_book: dict[tuple[str, str], list[PolymarketTrade]] = defaultdict(list)
    for t in pool.values():
        by_wallet[t.wallet].append(t)
        by_market[t.condition_id].append(t.notional)
        by_book[(t.condition_id, t.outcome)].append(t)
    market_median = {m: statistics.median(v) for m, v in by_market.items()}
    for book in by_book.values():
        book.sort(key=lambda t: (t.timestamp, t.trade_id))
    book_times = {k: [t.timestamp for t in v] for k, v in by_book.items()}

    out = []
    for t in trades:
        comps: dict[str, float] = {}
        size = math.log(max(t.notional, 1e-9))
        others = [math.log(max(o.notional, 1e-9)) for o in by_wallet[t.wallet] if o is not t]
        if len(others) >= cfg.min_wallet_history:
            med, spread = _robust(others, cfg.min_mad)
            comps["size_vs_wallet"] = max(0.0, (size - med) / spread) / (2 * cfg.wallet_z)
        else:
            multiple = t.notional / market_median[t.condition_id]
            comps["fresh_wallet"] = max(0.0, math.log(max(multiple, 1.0))) / (
                2 * math.log(cfg.fresh_multiple)
            )
        ref = _reference_price(
            t,
            by_book[(t.condition_id, t.outcome)],
            book_times[(t.condition_id, t.outcome)],
            cfg.reference_trades,
        )
        if ref is not None:
            comps["price_dislocation"] = abs(t.price - ref) / (2 * cfg.price_gap)
        score = min(1.0, max(comps.values(), default=0.0))
        reasons = sorted(
            (k for k, v in comps.items() if v >= cfg.threshold), key=lambda k: -comps[k]
        )
        out.append(
            AnomalyScore(
                trade_id=t.trade_id,
                wallet=t.wallet,
                condition_id=t.condition_id,
                timestamp=t.timestamp,
                notional_usd=round(t.notional, 2),
                score=round(score, 4),
                flagged=score >= cfg.threshold,
                reasons=reasons,
                components={k: round(v, 4) for k, v in comps.items()},
            )
        )
    return out


def _reference_price(
    t: PolymarketTrade, book: list[PolymarketTrade], times: list[int], k: int
) -> float | None:
    """Median price of the ``k`` trades nearest in time to ``t`` on its book (``t`` excluded)."""
    i = bisect_left(times, t.timestamp)
    lo, hi = i - 1, i
    picked: list[float] = []
    while len(picked) < k and (lo >= 0 or hi < len(book)):
        take_hi = lo < 0 or (hi < len(book) and times[hi] - t.timestamp <= t.timestamp - times[lo])
        cand = book[hi] if take_hi else book[lo]
        if take_hi:
            hi += 1
        else:
            lo -= 1
        if cand.trade_id != t.trade_id:
            picked.append(cand.price)
    return statistics.median(picked) if len(picked) >= 3 else None
