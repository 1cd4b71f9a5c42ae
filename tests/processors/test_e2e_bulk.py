"""01's bulk analysis over HTTP against the simulator's ground truth: N wallets x types, one
wallet whose history cannot be fetched (for good), and the wallets' partial-failure threshold
honoured either way; the bulk status reports every wallet and every type."""

from __future__ import annotations

import msgspec
import pytest

from processors.errors import ProviderError
from processors.models import SwapPage, WalletBalances
from processors.providers.base import ChainProvider
from processors.providers.simulator import simulated_providers
from tests.support.deployment import deployment

ANALYZE = "/api/v1/jobs/wallets/analyze"


class LosesOneWallet:
    """The simulated chain, except that one wallet's history is refused for good (as the real
    service refuses an address it will never serve)."""

    def __init__(self, inner: ChainProvider, lost: str) -> None:
        self.inner = inner
        self.lost = lost

    async def get_swaps(
        self, wallet: str, *, before: str | None = None, limit: int = 100
    ) -> SwapPage:
        if wallet == self.lost:
            raise ProviderError("address not served", provider="simulator:chain", retryable=False)
        return await self.inner.get_swaps(wallet, before=before, limit=limit)

    async def get_balances(self, wallet: str) -> WalletBalances:
        return await self.inner.get_balances(wallet)


@pytest.mark.parametrize(("threshold", "passes"), [(0.8, True), (0.9, False)])
async def test_bulk_analysis_with_one_wallet_lost(
    valkey_url: str, threshold: float, passes: bool
) -> None:
    providers = simulated_providers(seed=5)
    world = providers.chain.world  # type: ignore[attr-defined]
    wallets = [a for a, s in world.wallets.items() if s in ("holder", "flipper", "sniper")][:5]
    lost = wallets[2]
    providers = msgspec.structs.replace(providers, chain=LosesOneWallet(providers.chain, lost))
    async with deployment(valkey_url, providers=providers, serve=True) as d:
        r = await d.http.post(
            ANALYZE,
            json={
                "walletAddresses": wallets,
                "analysisTypes": ["pnl", "behavior"],
                "failureThreshold": threshold,
            },
        )
        assert r.status_code == 202, r.text
        accepted = r.json()
        bulk_id = accepted["bulkJobId"]
        assert accepted["monitoringUrl"] == f"/api/v1/jobs/bulk/{bulk_id}/status"
        assert (accepted["wallets"], accepted["jobs"]) == (5, 20)  # 10 analyses, 10 syncs

        first = (await d.http.get(accepted["monitoringUrl"])).json()
        assert set(first["wallets"]) == set(wallets) and set(first["types"]) == {"pnl", "behavior"}
        assert all(t["total"] == 5 for t in first["types"].values())

        parent = await d.app.handle(accepted["queueName"], bulk_id).wait(timeout=60)
        assert parent.state == ("completed" if passes else "dead")
        status = (await d.http.get(accepted["monitoringUrl"])).json()
        store = d.runtime.store
        pnl = {w: store.pnl(w) for w in wallets}
        behavior = {w: store.behavior(w) for w in wallets}

    assert status["state"] == parent.state and status["progress"] == 100.0
    for kind in ("pnl", "behavior"):
        assert status["types"][kind] == {
            "total": 5,
            "completed": 4,
            "failed": 1,
            "running": 0,
            "waiting": 0,
        }
    assert status["wallets"][lost]["state"] == "failed"
    # The lost wallet's syncs died, so its analyses never ran (policy "fail").
    assert set(status["wallets"][lost]["sync"].values()) == {"dead"}
    assert set(status["wallets"][lost]["analyses"].values()) == {"dead"}
    for w in wallets:
        if w != lost:
            assert status["wallets"][w]["state"] == "completed"
            report = pnl[w]
            assert report is not None and report.stats.net_sol == pytest.approx(
                world.truth(w).net_sol
            )
            assert behavior[w] is not None
    assert pnl[lost] is None and behavior[lost] is None
    if passes:
        result = status["result"]
        assert result["succeeded_wallets"] == [w for w in wallets if w != lost]
        assert set(result["failed_wallets"]) == {lost} and result["success_rate"] == 0.8
    else:
        assert status["result"] is None
        assert "only 4 of 5 wallets succeeded" in status["error"] and lost in status["error"]


async def test_bulk_and_sync_requests_are_checked(valkey_url: str) -> None:
    async with deployment(valkey_url, providers=simulated_providers(seed=5), serve=True) as d:
        wallet = next(iter(d.runtime.providers.chain.world.wallets))  # type: ignore[attr-defined]
        bad_type = await d.http.post(
            ANALYZE, json={"walletAddresses": [wallet], "analysisTypes": ["nope"]}
        )
        assert bad_type.status_code == 422
        bad_threshold = await d.http.post(
            ANALYZE, json={"walletAddresses": [wallet], "failureThreshold": 0}
        )
        assert bad_threshold.status_code == 422
        assert (await d.http.post(ANALYZE, json={"walletAddresses": ["nope"]})).status_code == 400
        missing = await d.http.get("/api/v1/jobs/bulk/bulk-none/status")
        assert missing.status_code == 404

        body = {"walletAddress": wallet, "requestId": "r-1", "priority": 7}
        one = await d.http.post("/api/v1/jobs/wallets/sync", json=body)
        again = await d.http.post("/api/v1/jobs/wallets/sync", json=body)
        assert one.status_code == again.status_code == 202
        assert one.json()["jobId"] == again.json()["jobId"] and again.json()["deduplicated"]
        job = await d.app.handle(one.json()["queueName"], one.json()["jobId"]).wait(timeout=30)
        assert job.state == "completed" and job.priority == "high"
        status = (await d.http.get(one.json()["monitoringUrl"])).json()
        assert status["state"] == "completed" and status["requestId"] == "r-1"
        bad = await d.http.post(
            "/api/v1/jobs/wallets/sync", json={"walletAddress": wallet, "priority": 11}
        )
        assert bad.status_code == 422
