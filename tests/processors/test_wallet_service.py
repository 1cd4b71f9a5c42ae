"""The wallet services over the simulator and a SQLite store, checked against ground truth."""

from __future__ import annotations

import hashlib
import statistics
from pathlib import Path

import pytest

from processors.errors import InsufficientData, InvalidWalletAddress, ProviderError
from processors.models import TokenInfo
from processors.providers.base import Providers
from processors.providers.sim_world import SimWorld
from processors.providers.simulator import (
    Faults,
    SimulatedChain,
    SimulatedTokenData,
    simulated_providers,
)
from processors.services.wallet import (
    dashboard_analysis,
    enrich_wallet_balances,
    fetch_balances,
    similarity_flow,
    sync_wallet,
    token_infos,
    wallets_needing_sync,
)
from processors.solana import b58encode
from processors.store import Store

pytestmark = pytest.mark.anyio
STYLE_TO_CLASS = {
    "holder": "holder",
    "flipper": "flipper",
    "sniper": "sniper",
    "hf_bot": "high_frequency",
}


def world_of(p: Providers) -> SimWorld:
    return p.chain.world  # type: ignore[attr-defined,no-any-return]


async def test_dashboard_matches_ground_truth_exactly(tmp_path: Path) -> None:
    providers = simulated_providers()
    world = world_of(providers)
    store = Store(tmp_path / "dash.db")
    steps: list[tuple[float, str]] = []

    async def progress(pct: float, message: str) -> None:
        steps.append((pct, message))

    for address, style in world.wallets.items():
        result = await dashboard_analysis(store, providers, address, progress=progress, now=10**6)
        truth = world.truth(address)
        assert result.synced and result.sync is not None
        assert result.sync.new_swaps == len(truth.swaps)
        s = result.pnl.stats
        assert (s.realised_sol, s.unrealised_sol, s.fees_sol, s.net_sol) == (
            truth.realised_sol,
            truth.unrealised_sol,
            truth.fees_sol,
            truth.net_sol,
        )
        for t in result.pnl.tokens:
            assert t.net_sol == truth.tokens[t.mint].net_sol
        b = result.behavior
        assert b.trades == len(truth.swaps)
        assert b.completed_holds == len(truth.hold_seconds)
        assert b.median_hold_seconds == (
            statistics.median(truth.hold_seconds) if truth.hold_seconds else None
        )
        if style != "copy_trader":
            assert b.classification == STYLE_TO_CLASS[style]
        assert store.pnl(address) == result.pnl and store.behavior(address) == result.behavior
    pcts = [p for p, _ in steps]
    assert pcts[0] == 10 and 80 in pcts
    # A second run within the freshness window skips the sync.
    again = await dashboard_analysis(store, providers, next(iter(world.wallets)), now=10**6 + 60)
    assert not again.synced
    store.close()


async def test_any_visitor_wallet_is_analysed_exactly() -> None:
    providers = simulated_providers(seed=2)
    world = world_of(providers)
    store = Store()
    for i in range(4):
        visitor = b58encode(hashlib.sha256(f"visitor {i}".encode()).digest())
        assert await wallets_needing_sync(store, [visitor], now=10**6) == [visitor]
        result = await dashboard_analysis(store, providers, visitor, now=10**6)
        truth = world.truth(visitor)
        assert result.pnl.stats.net_sol == truth.net_sol
        assert result.behavior.classification == STYLE_TO_CLASS[truth.style]
        assert await wallets_needing_sync(store, [visitor], now=10**6 + 1) == []


async def test_invalid_wallet_is_rejected_before_any_call() -> None:
    providers = simulated_providers()
    with pytest.raises(InvalidWalletAddress, match="nope"):
        await dashboard_analysis(Store(), providers, "nope")


async def test_sync_skips_fresh_wallets_and_fetches_only_new_swaps() -> None:
    world = SimWorld()
    chain = SimulatedChain(world)
    wallet = next(a for a, s in world.wallets.items() if s == "hf_bot")
    store = Store()
    first = await sync_wallet(store, chain, wallet, max_swaps=150, now=1000)
    assert first.fetched == 150 and first.pages == 2
    # only the newest 150 are stored, so the newest signature is known...
    skipped = await sync_wallet(store, chain, wallet, now=1100)
    assert skipped.status == "already-current" and skipped.pages == 0
    later = await sync_wallet(store, chain, wallet, now=5000)
    assert later.status == "synced" and later.fetched == 0 and later.pages == 1
    forced = await sync_wallet(store, chain, wallet, force=True, now=5001)
    assert forced.new_swaps == len(world.swaps(wallet)) - 150
    assert store.swaps(wallet) == world.swaps(wallet)


async def test_thirty_percent_failures_surface_as_retryable_errors() -> None:
    world = SimWorld()
    chain = SimulatedChain(world, Faults(error_rate=0.3, seed=11))
    store = Store()
    outcomes = {"ok": 0, "retryable": 0}
    wallets = list(world.wallets)
    for i in range(60):
        try:
            await sync_wallet(store, chain, wallets[i % len(wallets)], force=True, now=i)
            outcomes["ok"] += 1
        except ProviderError as exc:
            assert exc.retryable
            outcomes["retryable"] += 1
    print(f"sync with error_rate=0.3: {outcomes}")
    assert outcomes["ok"] > 0 and outcomes["retryable"] > 0
    # retrying the failures (what the broker does) eventually syncs every wallet exactly
    for w in wallets:
        for _attempt in range(20):
            try:
                await sync_wallet(store, chain, w, force=True, now=10**6)
                break
            except ProviderError:
                continue
        assert store.swaps(w) == world.swaps(w)


async def test_fetch_balances_reports_failures_per_wallet() -> None:
    providers = simulated_providers()
    wallets = list(world_of(providers).wallets)[:3]
    got, failed = await fetch_balances(providers.chain, [*wallets, "bad"])
    assert set(got) == set(wallets) and set(failed) == {"bad"}
    assert not failed["bad"].retryable


async def test_similarity_flow_end_to_end() -> None:
    providers = simulated_providers()
    world = world_of(providers)
    store = Store()
    copier, leader = next(iter(world.leaders.items()))
    others = [a for a in world.wallets if a not in (copier, leader)][:4]
    wallets = [copier, leader, *others]
    result = await similarity_flow(
        store, providers, wallets, request_id="req-9", wallets_needing_sync=wallets, now=10**6
    )
    assert result.processed_wallets == 6 and result.success_rate == 1.0
    top = result.similarity.pairs[0]
    assert {top.wallet_a, top.wallet_b} == {copier, leader}
    assert top.holdings_cosine is not None
    assert store.similarity("req-9") == result.similarity
    assert store.pnl(copier) is not None  # the deep sync analysed each wallet


async def test_similarity_flow_tolerates_some_failures_only() -> None:
    providers = simulated_providers()
    world = world_of(providers)
    store = Store()
    wallets = list(world.wallets)[:5]
    for w in wallets:
        await sync_wallet(store, providers.chain, w, now=1)
    bad = "1" * 32  # a valid address, but never synced: no swaps in the store
    ok = await similarity_flow(store, providers, wallets, request_id="r", failure_threshold=0.8)
    assert ok.processed_wallets == 5
    with pytest.raises(InsufficientData):
        await similarity_flow(store, providers, [wallets[0], bad], request_id="r2")
    with pytest.raises(InvalidWalletAddress):
        await similarity_flow(store, providers, [wallets[0], "zz"], request_id="r3")


async def test_enrichment_is_database_first() -> None:
    providers = simulated_providers()
    world = world_of(providers)
    store = Store()
    wallets = list(world.wallets)[:6]
    balances, _ = await fetch_balances(providers.chain, wallets)
    batches: list[int] = []

    async def on_batch(got: dict[str, TokenInfo]) -> None:
        batches.append(len(got))

    enriched = await enrich_wallet_balances(
        store, providers.tokens, balances, now=100, on_batch=on_batch
    )
    mints = {t.mint for b in balances.values() for t in b.tokens}
    assert sum(batches) == len(mints) + 1  # + SOL for the SOL/USD price
    for w in wallets:
        e = enriched[w]
        assert e.unpriced_tokens == 0
        want = sum(
            t.amount / 10**t.decimals * world.current_price(t.mint) * world.config.sol_usd
            for t in balances[w].tokens
        )
        assert e.tokens_value_usd == pytest.approx(want)
        assert e.total_value_usd == pytest.approx(want + e.sol * world.config.sol_usd)
    tokens = providers.tokens
    assert isinstance(tokens, SimulatedTokenData)
    calls = tokens.calls
    await token_infos(store, providers.tokens, sorted(mints), now=200)
    assert tokens.calls == calls  # all cached: no provider call
    await token_infos(store, providers.tokens, sorted(mints), now=100 + 7 * 3600)
    assert tokens.calls > calls  # older than 6 h: fetched again
