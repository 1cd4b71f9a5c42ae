from __future__ import annotations

import hashlib
import statistics

import pytest

from processors.analysis.behavior import BehaviorConfig, analyze_behavior
from processors.models import Swap
from processors.providers.sim_world import SimWorld, WorldConfig
from processors.solana import b58encode, is_valid_address

W = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
H = 3600
STYLE_TO_CLASS = {
    "holder": "holder",
    "flipper": "flipper",
    "sniper": "sniper",
    "hf_bot": "high_frequency",
}


def sw(n: int, mint: str, side: str, amount: int, t: int) -> Swap:
    return Swap(
        signature=f"s{n:05d}",
        wallet=W,
        mint=mint,
        side=side,  # type: ignore[arg-type]
        token_amount=amount,
        decimals=6,
        sol_lamports=10**9,
        fee_lamports=5000,
        timestamp=t,
    )


def test_holding_periods_by_hand() -> None:
    swaps = [
        sw(1, "A", "buy", 100, 0),
        sw(2, "A", "buy", 50, 1 * H),
        sw(3, "A", "sell", 75, 2 * H),
        sw(4, "A", "sell", 75, 3 * H),  # A: open 0h -> closed 3h
        sw(5, "B", "buy", 10, 10 * H),
        sw(6, "B", "sell", 10, 10 * H + 1800),  # B: 30 minutes
        sw(7, "A", "buy", 5, 20 * H),
        sw(8, "A", "sell", 5, 45 * H),  # A again: 25 hours
        sw(9, "C", "buy", 7, 50 * H),  # C: still open
    ]
    m = analyze_behavior(W, swaps)
    assert (m.trades, m.buys, m.sells) == (9, 5, 4)
    assert m.buy_sell_ratio == 1.25
    assert m.unique_tokens == 3 and m.tokens_bought_and_sold == 2
    assert m.completed_holds == 3 and m.open_positions == 1
    assert m.median_hold_seconds == 3 * H
    assert m.average_hold_seconds == pytest.approx((3 * H + 1800 + 25 * H) / 3)
    assert m.share_holds_under_1h == pytest.approx(1 / 3)
    assert m.share_holds_under_1d == pytest.approx(2 / 3)
    assert m.median_gap_seconds == statistics.median(
        [H, H, H, 7 * H, 1800, 9 * H + 1800, 25 * H, 5 * H]
    )
    assert m.early_entry_share is None  # no launch times given
    assert (m.first_trade, m.last_trade) == (0, 50 * H)
    assert m.classification == "flipper"  # three round trips, median 3 h


def test_sniper_needs_launch_times() -> None:
    launches = {"A": 0, "B": 10_000, "C": 20_000}
    swaps = []
    for i, (mint, launch) in enumerate(launches.items()):
        swaps += [
            sw(2 * i, mint, "buy", 10, launch + 20),
            sw(2 * i + 1, mint, "sell", 10, launch + 600),
        ]
    assert analyze_behavior(W, swaps).classification == "flipper"
    m = analyze_behavior(W, swaps, launch_times=launches)
    assert m.early_entry_share == 1.0
    assert m.classification == "sniper"
    late = analyze_behavior(W, swaps, launch_times={k: v - 3600 for k, v in launches.items()})
    assert late.early_entry_share == 0.0 and late.classification == "flipper"


def test_high_frequency_and_holder_and_inactive() -> None:
    bot = [sw(i, "A", "buy" if i % 2 == 0 else "sell", 10, i * 30) for i in range(200)]
    m = analyze_behavior(W, bot)
    assert m.classification == "high_frequency"
    assert m.trades_per_active_day == 200  # active span under a day counts as one day
    holder = [sw(1, "A", "buy", 10, 0), sw(2, "B", "buy", 10, 5 * 86_400)]
    assert analyze_behavior(W, holder).classification == "holder"
    empty = analyze_behavior(W, [])
    assert empty.classification == "inactive" and empty.median_hold_seconds is None


def test_thresholds_are_configurable() -> None:
    swaps = [sw(1, "A", "buy", 1, 0), sw(2, "A", "sell", 1, 2 * H)] * 1
    swaps += [sw(3, "B", "buy", 1, 10 * H), sw(4, "B", "sell", 1, 12 * H)]
    swaps += [sw(5, "C", "buy", 1, 20 * H), sw(6, "C", "sell", 1, 22 * H)]
    assert analyze_behavior(W, swaps).classification == "flipper"
    strict = BehaviorConfig(flip_max_hold=H)
    assert analyze_behavior(W, swaps, config=strict).classification == "swing"


def test_simulated_wallets_match_their_ground_truth() -> None:
    world = SimWorld(WorldConfig(seed=3))
    launches = {t.mint: t.launch for t in world.tokens.values()}
    for address, style in world.wallets.items():
        truth = world.truth(address)
        m = analyze_behavior(address, truth.swaps, launch_times=launches)
        assert m.trades == len(truth.swaps)
        assert m.buys == sum(t.buys for t in truth.tokens.values())
        assert m.completed_holds == len(truth.hold_seconds)
        want = statistics.median(truth.hold_seconds) if truth.hold_seconds else None
        assert m.median_hold_seconds == want
        if style != "copy_trader":  # a copier behaves like whoever it copies
            assert m.classification == STYLE_TO_CLASS[style], (address, m.reasons)


def test_any_address_gets_a_classifiable_history() -> None:
    world = SimWorld()
    launches = {t.mint: t.launch for t in world.tokens.values()}
    seen = set()
    for i in range(24):
        address = b58encode(hashlib.sha256(f"visitor {i}".encode()).digest())
        assert is_valid_address(address) and address not in world.wallets
        truth = world.truth(address)
        m = analyze_behavior(address, truth.swaps, launch_times=launches)
        assert m.classification == STYLE_TO_CLASS[truth.style]
        seen.add(truth.style)
    assert seen == set(STYLE_TO_CLASS)
