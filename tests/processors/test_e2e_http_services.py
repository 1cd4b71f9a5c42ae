"""The jobs over the HTTP providers, against the local stand-in services on a real socket: the
stand-ins see no more requests per second than the plans' limits allow, and the data that
comes through them is exact."""

from __future__ import annotations

import secrets
from pathlib import Path

import anyio
import msgspec

from processors.jobs.types import DashboardOutcome
from processors.providers.factory import ProviderSettings, build_providers, close_providers
from processors.providers.ratelimit import SharedRateLimiter
from server import running_server
from tests.support.deployment import deployment
from tests.support.load import cpu_burn
from tests.support.standin import StandIn


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def test_jobs_respect_the_transaction_api_rate_limit(valkey_url: str) -> None:
    """On a machine whose every core is busy with something else: the limit is a promise to
    the service, and a loaded CPU only delays requests, never bunches them."""
    with cpu_burn():
        await _jobs_respect_the_transaction_api_rate_limit(valkey_url)


async def _jobs_respect_the_transaction_api_rate_limit(valkey_url: str) -> None:
    stand = StandIn()
    world = stand.world
    hfs = [a for a, s in world.wallets.items() if s == "hf_bot"]
    others = [a for a, s in world.wallets.items() if s == "flipper"]
    async with running_server(stand.app) as url:
        providers = build_providers(
            ProviderSettings(
                kind="http",
                helius_api_key=stand.api_key,
                helius_url=url,
                dexscreener_url=url,
                polymarket_gamma_url=url,
                polymarket_data_url=url,
                webhook_url=f"{url}/webhook",
            )
        )
        try:
            async with deployment(valkey_url, providers=providers) as d:
                syncs = [await d.app.enqueue("sync-wallet", {"wallet": w}) for w in [*hfs, *others]]
                dash = await d.app.enqueue(
                    "dashboard-wallet-analysis", {"wallet": others[0], "request_id": "r1"}
                )
                with anyio.fail_after(60):
                    for h in syncs:
                        await h.result(timeout=None)
                    out = msgspec.convert(await dash.result(timeout=None), DashboardOutcome)
                stored = {w: d.runtime.store.swaps(w) for w in [*hfs, *others]}
        finally:
            await close_providers(providers)
    helius = [t for t, path in stand.requests if path.startswith("/v0/addresses/")]
    dex = [t for t, path in stand.requests if path.startswith("/latest/dex/")]
    busiest, busiest_dex = max_in_window(helius, 0.9), max_in_window(dex, 0.9)
    span = max(helius) - min(helius)
    print(
        f"transaction API: {len(helius)} requests over {span:.2f} s, at most {busiest} in any "
        f"0.9 s (limit 10/s); token API: {len(dex)} requests, at most {busiest_dex} in 0.9 s "
        "(limit 5/s)"
    )
    assert len(helius) >= 15, "too few requests to exercise the limit"
    assert busiest <= 10 and busiest_dex <= 5
    assert (len(helius) - 1) / span <= 10.5
    for w, swaps in stored.items():
        assert swaps == world.swaps(w), f"{w}: swaps differ from the source"
    assert out.pnl.stats.net_sol == world.truth(others[0]).net_sol


async def test_two_worker_deployments_share_one_rate_limit(valkey_url: str, tmp_path: Path) -> None:
    """Two deployments on the same queues, each with its own HTTP clients (as two worker
    processes would be): together they still send at most 10 requests/s to the transaction API,
    with every core of the machine busy with something else."""
    with cpu_burn():
        await _two_deployments_share_one_rate_limit(valkey_url, tmp_path)


async def _two_deployments_share_one_rate_limit(valkey_url: str, tmp_path: Path) -> None:
    stand = StandIn()
    world = stand.world
    wallets = [a for a, s in world.wallets.items() if s in ("hf_bot", "flipper")]
    suffix = f"-t{secrets.token_hex(4)}"
    async with running_server(stand.app) as url:
        clients = [
            build_providers(
                ProviderSettings(
                    kind="http",
                    helius_api_key=stand.api_key,
                    helius_url=url,
                    dexscreener_url=url,
                    polymarket_gamma_url=url,
                    polymarket_data_url=url,
                    webhook_url=f"{url}/webhook",
                )
            )
            for _ in range(2)
        ]
        db = str(tmp_path / "shared.db")
        try:
            async with (
                deployment(
                    valkey_url,
                    providers=clients[0],
                    store_path=db,
                    queue_suffix=suffix,
                    concurrency=2,
                ) as one,
                deployment(
                    valkey_url,
                    providers=clients[1],
                    store_path=db,
                    queue_suffix=suffix,
                    concurrency=2,
                ) as two,
            ):
                handles = [await one.app.enqueue("sync-wallet", {"wallet": w}) for w in wallets]
                with anyio.fail_after(60):
                    for h in handles:
                        await h.result(timeout=None)
                for d in (one, two):
                    assert isinstance(
                        d.runtime.providers.chain.http.limiter,  # type: ignore[attr-defined]
                        SharedRateLimiter,
                    )
        finally:
            for p in clients:
                await close_providers(p)
    helius = [t for t, path in stand.requests if path.startswith("/v0/addresses/")]
    busiest = max_in_window(helius, 0.9)
    print(f"two deployments: {len(helius)} transaction API requests, at most {busiest} in 0.9 s")
    assert len(helius) >= 15 and busiest <= 10
