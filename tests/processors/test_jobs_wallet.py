"""wallet-operations through the broker: incremental sync with the high-frequency signature
cap, and balances behind the 30 s cache (one fetch however many ask)."""

from __future__ import annotations

import anyio
import msgspec
import pytest

from processors.config import SYNC
from processors.jobs import wallet as wallet_jobs
from processors.jobs.balance_cache import cached_balances
from processors.providers.simulator import simulated_providers
from tests.support.deployment import deployment


async def test_sync_is_incremental_and_caps_high_frequency_wallets(
    valkey_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wallet_jobs, "SYNC", msgspec.structs.replace(SYNC, dashboard_max_swaps=120))
    providers = simulated_providers(seed=8)
    world = providers.chain.world  # type: ignore[attr-defined]
    hf = next(a for a, s in world.wallets.items() if s == "hf_bot")
    flipper = next(a for a, s in world.wallets.items() if s == "flipper")
    async with deployment(valkey_url, providers=providers) as d:

        async def sync(wallet: str, **extra: object) -> dict[str, object]:
            h = await d.app.enqueue("sync-wallet", {"wallet": wallet, **extra})
            return await h.result(timeout=30)  # type: ignore[no-any-return]

        first = await sync(hf, deep=True)  # unknown wallet: no cap, full history, then classified
        assert first["new_swaps"] == len(world.swaps(hf))
        assert d.runtime.store.behavior(hf).classification == "high_frequency"  # type: ignore[union-attr]
        forced = await sync(hf, force=True)  # now known as high-frequency: the newest 120 only
        assert forced["fetched"] == 120 and forced["pages"] == 2
        again = await sync(flipper)
        assert again["new_swaps"] == len(world.swaps(flipper))
        current = await sync(flipper)
        assert current["status"] == "already-current" and current["pages"] == 0
        bad = await d.app.enqueue("sync-wallet", {"wallet": "not-a-wallet"})
        job = await bad.wait(timeout=30)
        assert job.state == "dead" and job.attempt == 1
        assert "INVALID_WALLET_ADDRESS" in (job.error or "")


async def test_balances_are_fetched_once_per_cache_window(valkey_url: str) -> None:
    providers = simulated_providers(seed=8)
    world = providers.chain.world  # type: ignore[attr-defined]
    wallet = next(iter(world.wallets))
    async with deployment(valkey_url, providers=providers) as d:
        got = []

        async def ask() -> None:
            got.append(await cached_balances(d.runtime, wallet, timeout=30))

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(ask)
        await ask()  # later: from the cache
        direct = await (await d.app.enqueue("fetch-balances", {"wallet": wallet})).result()
    assert providers.chain.calls == 1  # type: ignore[attr-defined]
    assert all(b == world.balances(wallet) for b in got)
    assert direct == msgspec.to_builtins(world.balances(wallet))
