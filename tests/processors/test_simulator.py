from __future__ import annotations

import time

import anyio
import msgspec
import pytest

from processors.errors import ProviderError, RateLimited
from processors.models import Alert
from processors.providers.base import (
    AlertSink,
    ChainProvider,
    PolymarketProvider,
    TokenDataProvider,
)
from processors.providers.sim_polymarket import PolymarketConfig, PolymarketWorld
from processors.providers.sim_world import SimWorld, WorldConfig
from processors.providers.simulator import (
    Faults,
    SimulatedChain,
    SimulatedTokenData,
    simulated_providers,
)
from processors.solana import SOL_MINT, is_valid_address

pytestmark = pytest.mark.anyio


def _snapshot(world: SimWorld) -> bytes:
    wallets = sorted(world.wallets)
    return msgspec.json.encode(
        {
            "swaps": {a: world.swaps(a) for a in wallets},
            "balances": {a: world.balances(a) for a in wallets},
            "prices": {m: world.current_price(m) for m in sorted(world.tokens)},
        }
    )


def test_same_seed_same_world_other_seed_other_world() -> None:
    a, b = SimWorld(WorldConfig(seed=5)), SimWorld(WorldConfig(seed=5))
    assert _snapshot(a) == _snapshot(b)
    assert _snapshot(a) != _snapshot(SimWorld(WorldConfig(seed=6)))
    pa, pb = PolymarketWorld(PolymarketConfig(seed=5)), PolymarketWorld(PolymarketConfig(seed=5))
    assert msgspec.json.encode(pa.trades) == msgspec.json.encode(pb.trades)
    assert pa.anomalies == pb.anomalies and pa.whales == pb.whales
    assert pa.trades != PolymarketWorld(PolymarketConfig(seed=6)).trades


def test_population_and_addresses() -> None:
    world = SimWorld()
    styles = list(world.wallets.values())
    assert {s: styles.count(s) for s in set(styles)} == {
        "holder": 5,
        "flipper": 6,
        "sniper": 4,
        "hf_bot": 3,
        "copy_trader": 4,
    }
    assert all(is_valid_address(a) for a in world.wallets)
    assert all(is_valid_address(m) for m in world.tokens)
    for copier, leader in world.leaders.items():
        assert world.truth(copier).leader == leader
        assert world.wallets[leader] in ("holder", "flipper", "sniper")


def test_balances_follow_from_the_swaps() -> None:
    world = SimWorld()
    for address in list(world.wallets)[:10]:
        held: dict[str, int] = {}
        for s in world.swaps(address):
            held[s.mint] = held.get(s.mint, 0) + (
                s.token_amount if s.side == "buy" else -s.token_amount
            )
            assert s.timestamp <= world.config.now
            assert s.sol_lamports > 0 and s.token_amount > 0
        assert all(v >= 0 for v in held.values())
        got = {t.mint: t.amount for t in world.balances(address).tokens}
        assert got == {m: v for m, v in held.items() if v > 0}


def test_copy_trader_trades_seconds_after_its_leader() -> None:
    world = SimWorld()
    for copier, leader in world.leaders.items():
        leader_buys: dict[str, list[int]] = {}
        for s in world.swaps(leader):
            if s.side == "buy":
                leader_buys.setdefault(s.mint, []).append(s.timestamp)
        copied = [s for s in world.swaps(copier) if s.side == "buy"]
        assert copied
        for s in copied:
            lags = [s.timestamp - t for t in leader_buys[s.mint] if s.timestamp >= t]
            assert lags and 0 < min(lags) <= 45 + 120  # delay, or queued behind its last copy


async def test_paging_returns_every_swap_once_newest_first() -> None:
    world = SimWorld()
    chain = SimulatedChain(world)
    bot = next(a for a, s in world.wallets.items() if s == "hf_bot")
    seen, before, pages = [], None, 0
    while True:
        page = await chain.get_swaps(bot, before=before, limit=37)
        seen += page.swaps
        pages += 1
        if page.before is None:
            break
        before = page.before
    assert [s.signature for s in seen] == [s.signature for s in reversed(world.swaps(bot))]
    assert pages == -(-len(seen) // 37)
    assert isinstance(chain, ChainProvider)


async def test_any_valid_address_has_its_own_deterministic_history() -> None:
    providers = simulated_providers(seed=1)
    visitor = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
    page = await providers.chain.get_swaps(visitor)
    again = await simulated_providers(seed=1).chain.get_swaps(visitor)
    assert page.swaps and page == again
    assert all(s.wallet == visitor for s in page.swaps)
    with pytest.raises(ProviderError) as info:
        await providers.chain.get_balances("not-a-wallet")
    assert not info.value.retryable and info.value.status == 400


async def test_thirty_percent_error_rate_raises_retryable_errors() -> None:
    chain = SimulatedChain(SimWorld(), Faults(error_rate=0.3, seed=3))
    wallet = next(iter(chain.world.wallets))
    failures = 0
    for _ in range(400):
        try:
            await chain.get_balances(wallet)
        except ProviderError as exc:
            assert exc.retryable and exc.status == 503
            failures += 1
    print(f"error_rate=0.3: {failures}/400 calls failed")
    assert 0.22 < failures / 400 < 0.38


async def test_rate_limit_answers_like_a_429() -> None:
    tokens = SimulatedTokenData(SimWorld(), Faults(rate_limit=5))
    mint = next(iter(tokens.world.tokens))
    for _ in range(5):
        await tokens.get_tokens([mint])
    with pytest.raises(RateLimited) as info:
        await tokens.get_tokens([mint])
    assert info.value.retryable and 0 < (info.value.retry_after or 0) <= 1.0


async def test_latency_is_applied() -> None:
    chain = SimulatedChain(SimWorld(), Faults(latency=0.05))
    wallet = next(iter(chain.world.wallets))
    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(chain.get_balances, wallet)
    elapsed = time.monotonic() - start
    assert 0.025 <= elapsed < 0.5  # concurrent calls overlap: about one latency, not four


async def test_token_data_prices_and_limits() -> None:
    providers = simulated_providers()
    world = providers.tokens.world  # type: ignore[attr-defined]
    mints = sorted(world.tokens)[:3]
    got = await providers.tokens.get_tokens([*mints, SOL_MINT, "unknown"])
    assert set(got) == {*mints, SOL_MINT}
    for m in mints:
        assert got[m].price_sol == world.current_price(m)
        assert got[m].price_usd == pytest.approx(got[m].price_sol * world.config.sol_usd)
        assert got[m].pair_created_at == world.tokens[m].launch
    assert got[SOL_MINT].price_usd == world.config.sol_usd
    with pytest.raises(ProviderError, match="at most 30"):
        await providers.tokens.get_tokens(sorted(world.tokens)[:31])
    assert isinstance(providers.tokens, TokenDataProvider)


async def test_polymarket_and_alert_sink() -> None:
    providers = simulated_providers()
    pm = providers.polymarket
    assert isinstance(pm, PolymarketProvider) and isinstance(providers.alerts, AlertSink)
    world = pm.world  # type: ignore[attr-defined]
    markets = await pm.get_markets(limit=5)
    assert len(markets) == 5
    assert [m.volume_usd for m in markets] == sorted((m.volume_usd for m in markets), reverse=True)
    since = world.config.now - 3600
    page = await pm.get_trades(since=since, limit=10_000)
    assert page and all(since <= t.timestamp < world.config.now for t in page)
    assert page == sorted(page, key=lambda t: (t.timestamp, t.trade_id))
    alert = Alert(id="a1", kind="test", severity="info", title="t", description="d")
    await providers.alerts.send(alert)
    assert providers.alerts.delivered == [alert]  # type: ignore[attr-defined]
