from __future__ import annotations

import math
from itertools import combinations

import pytest

from processors.analysis.similarity import analyze_similarity, cosine, jaccard
from processors.errors import InsufficientData
from processors.models import Swap, TokenBalance, WalletBalances
from processors.providers.sim_world import SimWorld, WorldConfig


def buy(wallet: str, mint: str, sol: int, n: int = 0) -> Swap:
    return Swap(
        signature=f"{wallet}{mint}{n}",
        wallet=wallet,
        mint=mint,
        side="buy",
        token_amount=1,
        decimals=0,
        sol_lamports=sol,
        fee_lamports=0,
        timestamp=n,
    )


def test_vectors_and_measures_by_hand() -> None:
    swaps = {
        "A": [buy("A", "X", 3), buy("A", "Y", 4)],
        "B": [buy("B", "X", 6), buy("B", "Y", 8)],  # same allocation as A, twice the size
        "C": [buy("C", "Y", 1), buy("C", "Z", 1)],
    }
    result = analyze_similarity(swaps)
    by_pair = {(p.wallet_a, p.wallet_b): p for p in result.pairs}
    ab, ac = by_pair[("A", "B")], by_pair[("A", "C")]
    assert ab.capital_cosine == pytest.approx(1.0)
    assert ab.jaccard == 1.0 and ab.shared_tokens == ["X", "Y"]
    # A = (3, 4, 0), C = (0, 1, 1): cos = 4 / (5 * sqrt 2)
    assert ac.capital_cosine == pytest.approx(4 / (5 * math.sqrt(2)))
    assert ac.binary_cosine == pytest.approx(1 / 2)
    assert ac.jaccard == pytest.approx(1 / 3)
    assert ac.shared_tokens == ["Y"]
    assert result.pairs[0] is ab  # best first
    assert result.shared_token_counts == {"X": 2, "Y": 3}
    binary = analyze_similarity(swaps, vector_type="binary")
    assert {(p.wallet_a, p.wallet_b): p.score for p in binary.pairs}[("A", "C")] == pytest.approx(
        0.5
    )


def test_helpers() -> None:
    assert cosine({}, {"a": 1.0}) == 0.0
    assert cosine({"a": 1.0, "b": 1.0}, {"b": 2.0}) == pytest.approx(1 / math.sqrt(2))
    assert jaccard([], []) == 0.0
    assert jaccard("abc", "bcd") == pytest.approx(0.5)


def test_needs_two_wallets_with_swaps() -> None:
    with pytest.raises(InsufficientData, match="at least 2"):
        analyze_similarity({"A": [buy("A", "X", 1)], "B": []})
    result = analyze_similarity({"A": [buy("A", "X", 1)], "B": [buy("B", "X", 1)], "C": []})
    assert result.skipped == ["C"] and result.wallets == ["A", "B"]


def test_holdings_cosine_uses_prices() -> None:
    swaps = {"A": [buy("A", "X", 1)], "B": [buy("B", "Y", 1)]}
    bal = {
        "A": WalletBalances(
            wallet="A", lamports=0, tokens=[TokenBalance(mint="Z", amount=10, decimals=0)]
        ),
        "B": WalletBalances(
            wallet="B", lamports=0, tokens=[TokenBalance(mint="Z", amount=99, decimals=0)]
        ),
    }
    pair = analyze_similarity(swaps, balances=bal, prices={"Z": 2.0}).pairs[0]
    assert pair.capital_cosine == 0.0
    assert pair.holdings_cosine == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [7, 21])
def test_copy_traders_score_above_every_unrelated_pair(seed: int) -> None:
    world = SimWorld(WorldConfig(seed=seed))
    result = analyze_similarity({a: world.swaps(a) for a in world.wallets})
    copies = {frozenset(p) for p in world.leaders.items()}
    assert len(copies) == world.config.copy_traders
    related = [p for p in result.pairs if frozenset((p.wallet_a, p.wallet_b)) in copies]
    others = [p for p in result.pairs if frozenset((p.wallet_a, p.wallet_b)) not in copies]
    assert len(related) + len(others) == len(list(combinations(world.wallets, 2)))
    for measure in ("capital_cosine", "binary_cosine", "jaccard"):
        lowest_copy = min(getattr(p, measure) for p in related)
        highest_other = max(getattr(p, measure) for p in others)
        print(
            f"seed {seed} {measure}: lowest copy-trader pair {lowest_copy:.3f}, "
            f"highest unrelated pair {highest_other:.3f}"
        )
        assert lowest_copy > highest_other
    top = {frozenset((p.wallet_a, p.wallet_b)) for p in result.pairs[: len(copies)]}
    assert top == copies
