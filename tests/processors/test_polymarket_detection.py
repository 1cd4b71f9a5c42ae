"""Whale ranking and anomaly scoring, by hand and against the simulator's injected truth."""

from __future__ import annotations

import pytest

from processors.analysis.polymarket import AnomalyConfig, rank_whales, score_trades
from processors.models import PolymarketTrade
from processors.providers.sim_polymarket import PolymarketConfig, PolymarketWorld


def trade(
    i: int,
    wallet: str,
    notional: float,
    price: float = 0.5,
    t: int | None = None,
    market: str = "M",
) -> PolymarketTrade:
    return PolymarketTrade(
        trade_id=f"t{i}",
        wallet=wallet,
        condition_id=market,
        outcome="Yes",
        side="BUY",
        size=notional / price,
        price=price,
        timestamp=i * 60 if t is None else t,
    )


def test_whale_ranking_by_hand() -> None:
    trades = [
        trade(1, "a", 100),
        trade(2, "b", 5000),
        trade(3, "a", 200),
        trade(4, "c", 350),
        trade(5, "b", 1000, market="N"),
    ]
    whales = rank_whales(trades, top=2)
    assert [w.wallet for w in whales] == ["b", "c"]
    b = whales[0]
    assert (b.rank, b.trades, b.markets) == (1, 2, 2)
    assert b.volume_usd == pytest.approx(6000) and b.largest_trade_usd == pytest.approx(5000)
    assert b.average_trade_usd == pytest.approx(3000)
    assert [w.wallet for w in rank_whales(trades, min_volume_usd=351)] == ["b"]


def test_scoring_components_by_hand() -> None:
    regular = [trade(i, "r", 50 + i) for i in range(10)]  # ~$50 trader
    spike = trade(20, "r", 5000)  # 100x the usual size
    fresh = trade(21, "f", 20_000)  # a newcomer betting big
    odd = trade(22, "q", 50, price=0.85)  # far from the 0.5 everyone else trades at
    ordinary_newcomer = trade(23, "n", 60)
    trades = [*regular, spike, fresh, odd, ordinary_newcomer]
    scores = {s.trade_id: s for s in score_trades(trades)}
    assert scores["t20"].flagged and scores["t20"].reasons[0] == "size_vs_wallet"
    assert scores["t21"].flagged and scores["t21"].reasons == ["fresh_wallet"]
    assert scores["t22"].flagged and "price_dislocation" in scores["t22"].reasons
    assert scores["t22"].components["price_dislocation"] == pytest.approx(0.35 / 0.24, abs=1e-4)
    assert not scores["t23"].flagged
    assert not any(scores[f"t{i}"].flagged for i in range(10))
    lenient = AnomalyConfig(price_gap=0.5)
    assert not next(s for s in score_trades(trades, config=lenient) if s.trade_id == "t22").flagged


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_injected_anomalies_are_found(seed: int) -> None:
    world = PolymarketWorld(PolymarketConfig(seed=seed))
    truth = set(world.anomalies)
    flagged = {s.trade_id for s in score_trades(world.trades) if s.flagged}
    hits = len(flagged & truth)
    recall, precision = hits / len(truth), hits / max(1, len(flagged))
    print(
        f"seed {seed}: {len(world.trades)} trades, {len(truth)} injected anomalies, "
        f"{len(flagged)} flagged: recall {recall:.3f}, precision {precision:.3f}"
    )
    assert recall >= 0.9 and precision >= 0.9
    whales = rank_whales(world.trades, top=len(world.whales))
    assert {w.wallet for w in whales} == world.whales


def test_batches_scored_against_history_match_the_whole_run() -> None:
    world = PolymarketWorld()
    trades = world.trades
    start = trades[0].timestamp
    flagged: set[str] = set()
    # 30-second batches over the last two hours, each against everything before and inside it
    window_start = world.config.now - 7200
    history = [t for t in trades if t.timestamp < window_start]
    for lo in range(window_start, world.config.now, 30):
        batch = [t for t in trades if lo <= t.timestamp < lo + 30]
        flagged |= {s.trade_id for s in score_trades(batch, history) if s.flagged}
        history += batch
    late_truth = {
        i
        for i, _ in world.anomalies.items()
        if next(t for t in trades if t.trade_id == i).timestamp >= window_start
    }
    assert start < window_start and late_truth
    assert len(flagged & late_truth) / len(late_truth) >= 0.9
    assert len(flagged & late_truth) / len(flagged) >= 0.9
