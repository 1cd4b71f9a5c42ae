from __future__ import annotations

import pytest

from processors.analysis.enrichment import enrich_balances, plan_enrichment
from processors.models import TokenBalance, TokenInfo, WalletBalances


def info(mint: str, price: float | None, at: int = 0) -> TokenInfo:
    return TokenInfo(
        mint=mint, symbol=mint.upper(), name=f"{mint} token", price_usd=price, fetched_at=at
    )


def test_plan_reuses_fresh_cache_and_batches_the_rest() -> None:
    mints = [f"m{i}" for i in range(70)] + ["m0", "m1"]  # duplicates asked twice
    cached = {"m0": info("m0", 1.0, at=900), "m1": info("m1", 1.0, at=100)}
    plan = plan_enrichment(mints, cached, now=1000, max_age=300)
    assert plan.mints == [f"m{i}" for i in range(70)]
    assert plan.cached == ["m0"]  # m1 is too old
    assert [len(b) for b in plan.batches] == [30, 30, 9]
    assert plan.batches[0][0] == "m1"
    assert plan.hint == "small"
    assert plan_enrichment([f"x{i}" for i in range(101)], {}, now=0, max_age=1).hint == "large"
    assert plan_enrichment([f"x{i}" for i in range(1001)], {}, now=0, max_age=1).hint == "massive"


def test_values_by_hand() -> None:
    bal = WalletBalances(
        wallet="W",
        lamports=2_500_000_000,
        tokens=[
            TokenBalance(mint="a", amount=1_500_000, decimals=6),  # 1.5 a at $2
            TokenBalance(mint="b", amount=3 * 10**9, decimals=9),  # 3 b at $10
            TokenBalance(mint="c", amount=7, decimals=0),  # unknown token
        ],
    )
    out = enrich_balances({"W": bal}, {"a": info("a", 2.0), "b": info("b", 10.0)}, sol_usd=100.0)
    w = out["W"]
    assert [t.mint for t in w.tokens] == ["b", "a", "c"]  # by value, unpriced last
    assert w.tokens[0].value_usd == pytest.approx(30.0) and w.tokens[0].symbol == "B"
    assert w.tokens[1].ui_amount == 1.5 and w.tokens[1].value_usd == pytest.approx(3.0)
    assert w.tokens[2].price_usd is None and w.tokens[2].value_usd is None
    assert w.unpriced_tokens == 1
    assert w.sol == 2.5 and w.sol_value_usd == pytest.approx(250.0)
    assert w.tokens_value_usd == pytest.approx(33.0)
    assert w.total_value_usd == pytest.approx(283.0)
    no_sol_price = enrich_balances({"W": bal}, {}, sol_usd=None)["W"]
    assert no_sol_price.total_value_usd is None and no_sol_price.unpriced_tokens == 3
