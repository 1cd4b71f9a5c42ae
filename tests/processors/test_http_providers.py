"""The HTTP providers against stand-in services on a real socket (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import uvicorn

from processors.analysis.pnl import compute_pnl
from processors.errors import ProcessorsError, ProviderError, RateLimited
from processors.models import Alert
from processors.providers import wire
from processors.providers.factory import ProviderSettings, build_providers, close_providers
from processors.providers.http import (
    DexScreenerTokens,
    HeliusChain,
    HttpService,
    PolymarketHttp,
    WebhookAlertSink,
)
from processors.providers.simulator import SimulatedChain, SimulatedTokenData
from processors.services.wallet import sync_wallet
from processors.store import Store
from tests.support.standin import StandIn

pytestmark = pytest.mark.anyio


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[StandIn, str]]:
    stand = StandIn()
    port = _free_port()
    config = uvicorn.Config(
        stand.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "stand-in server did not start"
        time.sleep(0.01)
    yield stand, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def services(standin: tuple[StandIn, str]) -> tuple[StandIn, str]:
    stand, url = standin
    stand.requests.clear()
    stand._faults.clear()
    return stand, url


FAST: dict[str, Any] = {"backoff": 0.01, "max_backoff": 1.0}


async def test_helius_sync_over_http_gives_the_exact_pnl(services: tuple[StandIn, str]) -> None:
    stand, url = services
    world = stand.world
    chain = HeliusChain("test-key", base_url=url, rate_limit=1000, **FAST)
    bot = next(a for a, s in world.wallets.items() if s == "hf_bot")  # ~400 swaps, 5 pages
    store = Store()
    result = await sync_wallet(store, chain, bot, now=1)
    assert result.fetched == len(world.swaps(bot)) and result.pages >= 4
    assert store.swaps(bot) == world.swaps(bot)  # transfers skipped, every swap exact
    truth = world.truth(bot)
    report = compute_pnl(bot, store.swaps(bot), {m: world.current_price(m) for m in truth.tokens})
    assert report.stats.net_sol == truth.net_sol
    balances = await chain.get_balances(bot)
    assert balances.tokens == world.balances(bot).tokens
    assert balances.lamports == world.balances(bot).lamports
    # incremental: a second sync asks for one page and stops at the known newest signature
    stand.requests.clear()
    again = await sync_wallet(store, chain, bot, force=False, now=10_000)
    assert again.fetched == 0 and len(stand.requests) == 1
    await chain.aclose()


async def test_dexscreener_tokens_match_the_simulator(services: tuple[StandIn, str]) -> None:
    stand, url = services
    tokens = DexScreenerTokens(base_url=url, rate_limit=1000, **FAST)
    mints = sorted(stand.world.tokens)[:45]
    got = await tokens.get_tokens([*mints, "UnknownMint1111111111111111111111111111111"])
    want = await SimulatedTokenData(stand.world).get_tokens(mints[:30])
    want.update(await SimulatedTokenData(stand.world).get_tokens(mints[30:]))
    assert set(got) == set(mints)
    for m in mints:
        assert got[m].price_sol == want[m].price_sol  # exact through the JSON strings
        assert got[m].price_usd == want[m].price_usd
        assert (got[m].symbol, got[m].pair_created_at) == (want[m].symbol, want[m].pair_created_at)
    assert len(stand.requests) == 2  # 46 addresses -> batches of 30
    await tokens.aclose()


async def test_polymarket_over_http(services: tuple[StandIn, str]) -> None:
    stand, url = services
    pm = PolymarketHttp(gamma_url=url, data_url=url, rate_limit=1000, **FAST)
    markets = await pm.get_markets(limit=10)
    assert markets == stand.polymarket.markets[:10]
    since = stand.polymarket.config.now - 7200
    trades = await pm.get_trades(since=since, limit=10_000)
    assert trades == stand.polymarket.trades_between(since)
    await pm.aclose()


async def test_transient_errors_are_retried(services: tuple[StandIn, str]) -> None:
    stand, url = services
    chain = HeliusChain("test-key", base_url=url, rate_limit=1000, **FAST)
    wallet = next(iter(stand.world.wallets))
    stand.fail_next("/v0/", 503, 2)
    assert (await chain.get_balances(wallet)).wallet == wallet
    assert len(stand.requests) == 3
    stand.requests.clear()
    stand.fail_next("/v0/", 502, 10)
    with pytest.raises(ProviderError) as info:
        await chain.get_balances(wallet)
    assert info.value.retryable and info.value.status == 502
    assert len(stand.requests) == 4  # first try + 3 retries
    stand._faults.clear()
    await chain.aclose()


async def test_client_errors_are_not_retried(services: tuple[StandIn, str]) -> None:
    stand, url = services
    chain = HeliusChain("wrong-key", base_url=url, rate_limit=1000, **FAST)
    with pytest.raises(ProviderError) as info:
        await chain.get_balances(next(iter(stand.world.wallets)))
    assert not info.value.retryable and info.value.status == 401
    assert len(stand.requests) == 1
    await chain.aclose()
    http = HttpService("x", url)
    resp = await http.request("GET", "/markets")
    with pytest.raises(ProviderError, match="unexpected answer") as bad:
        http.decode(resp, wire.DexResponse)  # a list where an object is expected
    assert not bad.value.retryable
    await http.aclose()


async def test_429_waits_for_retry_after(services: tuple[StandIn, str]) -> None:
    stand, url = services
    tokens = DexScreenerTokens(base_url=url, rate_limit=1000, **FAST)
    mint = next(iter(stand.world.tokens))
    stand.fail_next("/latest/", 429, 1)  # Retry-After: 0.2
    start = time.monotonic()
    assert mint in await tokens.get_tokens([mint])
    assert time.monotonic() - start >= 0.2
    stand.fail_next("/latest/", 429, 10)
    with pytest.raises(RateLimited) as info:
        await tokens.get_tokens([mint])
    assert info.value.retryable and info.value.retry_after == 0.2
    stand._faults.clear()
    await tokens.aclose()


async def test_timeouts_are_retryable(services: tuple[StandIn, str]) -> None:
    stand, url = services
    tokens = DexScreenerTokens(base_url=url, rate_limit=1000, timeout=0.2, retries=1, **FAST)
    mint = next(iter(stand.world.tokens))
    stand.fail_next("/latest/", 0, 1, delay=0.5)  # late once, then fine
    assert mint in await tokens.get_tokens([mint])
    stand.fail_next("/latest/", 0, 2, delay=0.5)
    with pytest.raises(ProviderError, match="timeout") as info:
        await tokens.get_tokens([mint])
    assert info.value.retryable
    await tokens.aclose()


async def test_rate_limited_client_never_bursts(services: tuple[StandIn, str]) -> None:
    stand, url = services
    chain = HeliusChain("test-key", base_url=url, rate_limit=10.0)
    wallet = next(iter(stand.world.wallets))
    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        for _ in range(25):
            tg.start_soon(chain.get_balances, wallet)
    elapsed = time.monotonic() - start
    times = sorted(t for t, _ in stand.requests)
    assert len(times) == 25
    # Same process, same monotonic clock: request k reaches the server no earlier than k / rate
    # seconds after the calls began, whatever the concurrency (lateness is allowed, bursts not).
    early = [k for k, t in enumerate(times) if t - start < k * 0.1 - 0.001]
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    print(
        f"25 concurrent calls at 10 req/s: {elapsed:.2f}s in all, busiest 1 s window "
        f"{busiest} (11 only if the first request was late, never early)"
    )
    assert early == []
    assert elapsed >= 2.4 - 0.001
    await chain.aclose()


async def test_webhook_alerts(services: tuple[StandIn, str]) -> None:
    stand, url = services
    stand.webhooks.clear()
    sink = WebhookAlertSink(f"{url}/webhook", rate_limit=100, **FAST)
    alert = Alert(
        id="a-1",
        kind="polymarket-anomaly",
        severity="critical",
        title="Big bet",
        description="Wallet 0xabc bet $40,000",
        fields={"score": "0.95"},
        created_at=1_793_491_200,
    )
    stand.fail_next("/webhook", 429, 1)
    await sink.send(alert)
    assert len(stand.webhooks) == 1
    body = stand.webhooks[0]
    assert body["embeds"][0]["title"] == "Big bet"
    assert body["embeds"][0]["color"] == 0xE74C3C
    assert body["embeds"][0]["fields"] == [{"name": "score", "value": "0.95", "inline": True}]
    assert body["embeds"][0]["timestamp"] == "2026-11-01T00:00:00Z"
    await sink.aclose()


async def test_factory_builds_working_http_providers(services: tuple[StandIn, str]) -> None:
    stand, url = services
    settings = ProviderSettings.from_env(
        {
            "PROCESSORS_PROVIDERS": "http",
            "HELIUS_API_KEY": "test-key",
            "HELIUS_URL": url,
            "DEXSCREENER_URL": url,
            "POLYMARKET_GAMMA_URL": url,
            "POLYMARKET_DATA_URL": url,
            "ALERT_WEBHOOK_URL": f"{url}/webhook",
        }
    )
    providers = build_providers(settings)
    wallet = next(iter(stand.world.wallets))
    assert (await providers.chain.get_balances(wallet)).wallet == wallet
    assert len(await providers.polymarket.get_markets(limit=3)) == 3
    await close_providers(providers)
    with pytest.raises(ProcessorsError, match="HELIUS_API_KEY"):
        build_providers(ProviderSettings(kind="http"))
    with pytest.raises(ProcessorsError, match="PROCESSORS_PROVIDERS"):
        ProviderSettings.from_env({"PROCESSORS_PROVIDERS": "carrier-pigeon"})
    defaults = ProviderSettings.from_env({"SIM_ERROR_RATE": "0.3", "SIM_SEED": "3"})
    assert defaults.kind == "simulator" and defaults.error_rate == 0.3
    assert defaults.helius_url == "https://api.helius.xyz"
    sim = build_providers(defaults)
    assert isinstance(sim.chain, SimulatedChain)
