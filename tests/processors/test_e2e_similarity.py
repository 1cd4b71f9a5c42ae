"""The advanced similarity flow end to end (deep sync ∥ balances → similarity ∥ enrichment),
its partial-failure threshold, and analyses completing through a flaky provider."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import msgspec
import pytest

import streamq
from processors.errors import ProviderError
from processors.jobs.types import DashboardOutcome, SimilarityOutcome
from processors.models import SwapPage, WalletBalances
from processors.providers.base import Providers
from processors.providers.retrying import RetryPolicy, with_retries
from processors.providers.simulator import simulated_providers
from tests.support.deployment import Deployment, deployment

QUEUE_FLOW = "/api/v1/analyses/similarity/queue"


class BrokenWallet:
    """A chain provider whose every call about one wallet fails (retryably, for ever)."""

    def __init__(self, inner: Any, wallet: str) -> None:
        self.inner, self.wallet = inner, wallet

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _check(self, wallet: str) -> None:
        if wallet == self.wallet:
            raise ProviderError("503 upstream down", provider="test", retryable=True, status=503)

    async def get_swaps(
        self, wallet: str, *, before: str | None = None, limit: int = 100
    ) -> SwapPage:
        self._check(wallet)
        return await self.inner.get_swaps(wallet, before=before, limit=limit)  # type: ignore[no-any-return]

    async def get_balances(self, wallet: str) -> WalletBalances:
        self._check(wallet)
        return await self.inner.get_balances(wallet)  # type: ignore[no-any-return]


async def run_flow(d: Deployment, wallets: list[str], **extra: Any) -> dict[str, Any]:
    r = await d.http.post(QUEUE_FLOW, json={"walletAddresses": wallets, **extra})
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_copy_traders_score_above_every_unrelated_pair(valkey_url: str) -> None:
    providers = simulated_providers(seed=7)
    world = providers.chain.world  # type: ignore[attr-defined]
    copiers = dict(world.leaders)  # copier -> leader
    others = [
        a
        for a, s in world.wallets.items()
        if s in ("flipper", "holder") and a not in copiers.values()
    ][:3]
    wallets = [*copiers, *copiers.values(), *others]
    async with deployment(valkey_url, providers=providers, serve=True) as d:
        body = await run_flow(d, wallets)
        assert sorted(body["walletsNeedingSync"]) == sorted(wallets)  # all MISSING at first
        parent = d.app.handle(body["queueName"], body["jobId"])
        raw = await parent.result(timeout=60)
        out = msgspec.convert(raw, SimilarityOutcome)
        # The parent waited in the broker for its children (a flow), then ran once.
        types = [e.type async for e in parent.events()]
        assert types.index("waiting-children") < types.index("active")
        assert types.count("active") == 1 and types[-1] == "completed"
        # A second, quick (synchronous) analysis over the now-stored history agrees.
        quick = await d.http.post("/api/v1/analyses/similarity", json={"walletAddresses": wallets})
        assert quick.status_code == 200, quick.text
        again = await run_flow(d, wallets)
        assert again["walletsNeedingSync"] == []  # fresh now: no deep sync the second time
    assert out.failed_wallets == {} and out.processed_wallets == len(wallets)
    assert sorted(out.synced_wallets) == sorted(wallets)
    pairs = {frozenset((p.wallet_a, p.wallet_b)): p.score for p in out.similarity.pairs}
    copy = [frozenset(p) for p in copiers.items()]
    unrelated = [frozenset(p) for p in combinations(wallets, 2) if frozenset(p) not in copy]
    low, high = min(pairs[p] for p in copy), max(pairs[p] for p in unrelated)
    print(
        f"similarity separation: copy-trader pairs >= {low:.3f}, unrelated <= {high:.3f}, "
        f"margin {low - high:.3f}"
    )
    assert low > high
    assert quick.json()["similarity"]["pairs"][0]["score"] == out.similarity.pairs[0].score
    # Enrichment ran in parallel over the balances the flow fetched.
    assert out.enrichment is not None and set(out.enrichment) == set(wallets)
    assert out.balances == {w: world.balances(w) for w in wallets}
    assert out.children_seconds > 0


async def test_flow_completes_on_the_rest_when_one_wallet_keeps_failing(valkey_url: str) -> None:
    base = simulated_providers(seed=9)
    world = base.chain.world  # type: ignore[attr-defined]
    wallets = [a for a, s in world.wallets.items() if s in ("flipper", "sniper")][:5]
    broken = wallets[2]
    providers = with_retries(
        Providers(
            chain=BrokenWallet(base.chain, broken),
            tokens=base.tokens,
            polymarket=base.polymarket,
            alerts=base.alerts,
        ),
        RetryPolicy(attempts=2, base=0.01),
    )
    async with deployment(valkey_url, providers=providers, serve=True) as d:
        body = await run_flow(d, wallets)
        raw = await d.app.handle(body["queueName"], body["jobId"]).result(timeout=60)
        out = msgspec.convert(raw, SimilarityOutcome)
        status = (await d.http.get(f"/api/v1/jobs/{body['jobId']}/status")).json()
        assert status["state"] == "completed"
        # Two wallets, one failing: below the threshold, the flow fails for good (no retries).
        short = await run_flow(d, [wallets[0], broken])
        with pytest.raises(streamq.JobFailed, match="wallets usable"):
            await d.app.handle(short["queueName"], short["jobId"]).result(timeout=60)
        job = await d.app.job(short["queueName"], short["jobId"])
        assert job is not None and job.state == "dead" and job.attempt == 1
    assert set(out.failed_wallets) == {broken}
    assert "503 upstream down" in out.failed_wallets[broken]
    assert out.processed_wallets == 4 and out.success_rate == 0.8
    assert broken not in out.similarity.wallets and len(out.similarity.wallets) == 4


async def test_analyses_complete_through_thirty_percent_provider_failures(
    valkey_url: str,
) -> None:
    providers = with_retries(
        simulated_providers(seed=4, error_rate=0.3), RetryPolicy(attempts=5, base=0.005)
    )
    world = providers.chain.world  # type: ignore[attr-defined]
    wallets = [a for a, s in world.wallets.items() if s in ("holder", "sniper", "flipper")][:4]
    async with deployment(valkey_url, providers=providers, serve=True) as d:
        jobs = []
        for w in wallets:
            r = await d.http.post(
                "/api/v1/analyses/wallets/dashboard-analysis",
                json={"walletAddress": w, "enrichMetadata": False},
            )
            jobs.append(r.json()["jobId"])
        flow = await run_flow(d, wallets)
        q = d.queue("analysis-operations")
        outs = [
            msgspec.convert(await d.app.handle(q, j).result(timeout=60), DashboardOutcome)
            for j in jobs
        ]
        sim = msgspec.convert(
            await d.app.handle(q, flow["jobId"]).result(timeout=60), SimilarityOutcome
        )
        stats = {
            name: await d.app.stats(d.queue(name))
            for name in ("analysis-operations", "wallet-operations")
        }
    for w, out in zip(wallets, outs, strict=True):
        assert out.pnl.stats.net_sol == world.truth(w).net_sol
    assert sim.failed_wallets == {} and sim.processed_wallets == len(wallets)
    calls = providers.chain.calls + providers.tokens.calls  # type: ignore[attr-defined]
    print(
        f"provider calls {calls} at 30% failures; job retries: "
        + ", ".join(f"{n} {s.totals.get('retried', 0)}" for n, s in stats.items())
    )
    assert all(s.dead == 0 for s in stats.values())
