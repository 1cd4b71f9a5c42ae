from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.analysis.pnl import compute_pnl
from processors.models import LAMPORTS_PER_SOL, Swap
from processors.providers.sim_world import SimWorld, WorldConfig

W = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
SOL = LAMPORTS_PER_SOL


def swap(
    n: int, mint: str, side: str, tokens: float, sol: float, *, dec: int = 6, fee: int = 5_000
) -> Swap:
    return Swap(
        signature=f"sig{n}",
        wallet=W,
        mint=mint,
        side=side,  # type: ignore[arg-type]
        token_amount=round(tokens * 10**dec),
        decimals=dec,
        sol_lamports=round(sol * SOL),
        fee_lamports=fee,
        timestamp=1_000 + n,
    )


def test_average_cost_by_hand() -> None:
    swaps = [
        swap(1, "AAA", "buy", 1, 1.0),  # 1 token for 1 SOL
        swap(2, "AAA", "buy", 3, 6.0),  # 3 more for 6: 4 tokens, cost 7, average 1.75
        swap(3, "AAA", "sell", 2, 5.0),  # sell 2 for 5: basis 3.5 -> realised +1.5
        swap(4, "BBB", "buy", 10, 2.0, dec=9),
        swap(5, "BBB", "sell", 10, 1.0, dec=9),  # round trip at a 1 SOL loss
    ]
    report = compute_pnl(W, list(reversed(swaps)), {"AAA": 2.5})  # order must not matter
    aaa = next(t for t in report.tokens if t.mint == "AAA")
    assert aaa.buys == 2 and aaa.sells == 1
    assert aaa.remaining == 2_000_000
    assert aaa.average_cost_sol == 1.75
    assert aaa.realised_sol == 1.5
    assert aaa.unrealised_sol == 1.5  # 2 tokens at 2.5 = 5.0 against a 3.5 basis
    assert aaa.fees_sol == 0.000015
    assert aaa.net_sol == pytest.approx(2.999985, abs=1e-12)
    bbb = next(t for t in report.tokens if t.mint == "BBB")
    assert bbb.realised_sol == -1.0 and bbb.unrealised_sol == 0.0 and bbb.remaining == 0
    assert bbb.average_cost_sol is None

    s = report.stats
    assert s.tokens == 2 and s.trades == 5
    assert s.profitable_tokens == 1 and s.losing_tokens == 1 and s.win_rate == 0.5
    assert s.realised_sol == 0.5
    assert s.unrealised_sol == 1.5
    assert s.fees_sol == 0.000025
    assert s.net_sol == 1.999975
    assert s.total_bought_sol == 9.0 and s.total_sold_sol == 6.0
    assert s.best_token == "AAA" and s.worst_token == "BBB"
    assert s.median_token_net_sol == pytest.approx((2.999985 - 1.00001) / 2, abs=1e-12)


def test_selling_more_than_bought_has_no_basis_for_the_excess() -> None:
    # 1 token bought for 1 SOL, 3 sold for 6 SOL (2 came from elsewhere, e.g. an airdrop).
    report = compute_pnl(W, [swap(1, "AIR", "buy", 1, 1.0), swap(2, "AIR", "sell", 3, 6.0)])
    t = report.tokens[0]
    assert t.realised_sol == 5.0
    assert t.remaining == 0


def test_unpriced_holdings_are_flagged_not_guessed() -> None:
    report = compute_pnl(W, [swap(1, "NEW", "buy", 5, 1.0)])
    t = report.tokens[0]
    assert not t.priced
    assert t.unrealised_sol == 0.0 and t.current_price_sol is None
    assert t.average_cost_sol == 0.2
    priced = compute_pnl(W, [swap(1, "NEW", "buy", 5, 1.0)], {"NEW": 0.1}).tokens[0]
    assert priced.priced and priced.unrealised_sol == -0.5


def test_empty_wallet() -> None:
    report = compute_pnl(W, [])
    assert report.tokens == [] and report.stats.trades == 0 and report.stats.win_rate == 0.0


def test_every_simulated_wallet_matches_the_simulator_ledger_exactly() -> None:
    world = SimWorld(WorldConfig(seed=11))
    checked = 0
    for address in world.wallets:
        truth = world.truth(address)
        prices = {m: world.current_price(m) for m in truth.tokens}
        report = compute_pnl(address, truth.swaps, prices)
        assert report.stats.realised_sol == truth.realised_sol
        assert report.stats.unrealised_sol == truth.unrealised_sol
        assert report.stats.fees_sol == truth.fees_sol
        assert report.stats.net_sol == truth.net_sol
        for t in report.tokens:
            want = truth.tokens[t.mint]
            assert (t.realised_sol, t.unrealised_sol, t.net_sol, t.remaining) == (
                want.realised_sol,
                want.unrealised_sol,
                want.net_sol,
                want.remaining,
            )
            assert (t.buys, t.sells) == (want.buys, want.sells)
        checked += 1
    assert checked == len(world.wallets) > 10


@st.composite
def round_trips(draw: st.DrawFn) -> list[Swap]:
    """Buys and sells of one token that never sell more than held and end flat."""
    held, out, n = 0, [], 0
    for _ in range(draw(st.integers(1, 12))):
        amount = draw(st.integers(1, 10**12))
        out.append(
            Swap(
                signature=f"b{n}",
                wallet=W,
                mint="T",
                side="buy",
                token_amount=amount,
                decimals=6,
                sol_lamports=draw(st.integers(1, 10**12)),
                fee_lamports=draw(st.integers(0, 10**6)),
                timestamp=n,
            )
        )
        held, n = held + amount, n + 1
        if draw(st.booleans()):
            part = draw(st.integers(1, held))
            out.append(
                Swap(
                    signature=f"s{n}",
                    wallet=W,
                    mint="T",
                    side="sell",
                    token_amount=part,
                    decimals=6,
                    sol_lamports=draw(st.integers(0, 10**12)),
                    fee_lamports=draw(st.integers(0, 10**6)),
                    timestamp=n,
                )
            )
            held, n = held - part, n + 1
    if held:
        out.append(
            Swap(
                signature=f"s{n}",
                wallet=W,
                mint="T",
                side="sell",
                token_amount=held,
                decimals=6,
                sol_lamports=draw(st.integers(0, 10**12)),
                fee_lamports=0,
                timestamp=n,
            )
        )
    return out


@settings(max_examples=200, deadline=None)
@given(round_trips(), st.floats(min_value=1e-9, max_value=1e3))
def test_a_closed_position_realises_exactly_sold_minus_bought(
    swaps: list[Swap], price: float
) -> None:
    t = compute_pnl(W, swaps, {"T": price}).tokens[0]
    bought = sum(s.sol_lamports for s in swaps if s.side == "buy")
    sold = sum(s.sol_lamports for s in swaps if s.side == "sell")
    fees = sum(s.fee_lamports for s in swaps)
    assert t.remaining == 0 and t.unrealised_sol == 0.0  # flat: the price plays no part
    assert t.realised_sol == float(Fraction(sold - bought, SOL))
    assert t.net_sol == float(Fraction(sold - bought - fees, SOL))
