"""Issue 11, finding 1 turned around, on the real application: a write token cannot plant a job
under an id the application derives (``bal:{wallet}:{window}``, ``sync-…``, ``pnl-…``) nor
start its internal tasks over the generic API; and should such a job exist anyway, the
application refuses it instead of using another wallet's balance. On both servers."""

from __future__ import annotations

import time

import httpx
import pytest

import streamq
from processors.api import operations
from processors.config import CACHE
from processors.ids import balances_job_id, pnl_job_id, sync_job_id
from processors.jobs.balance_cache import cached_balances, read_cached_balances
from processors.jobs.types import FetchBalances
from processors.providers.simulator import simulated_providers
from server import ServerSettings, create_app
from tests.support.deployment import deployment

WRITER = "writer-" + "w" * 32


def two_wallets() -> tuple[str, str]:
    world = simulated_providers(seed=11).chain.world  # type: ignore[attr-defined]
    a, b = list(world.wallets)[:2]
    return a, b


def windows() -> list[int]:
    """This balance-cache window and the next (a test may cross the boundary)."""
    now = int(time.time() // CACHE.balances_ttl)
    return [now, now + 1]


async def test_the_planted_balance_id_is_refused_over_the_api(redis_url: str) -> None:
    victim, other = two_wallets()
    settings = ServerSettings(rate_limit_per_second=0).with_tokens(f"writer={WRITER}:write")
    async with deployment(redis_url, providers=simulated_providers(seed=11)) as d:
        wallet_ops, analysis = d.queue("wallet-operations"), d.queue("analysis-operations")
        asgi = create_app(settings, d.app, extra_operations=operations())
        auth = {"Authorization": f"Bearer {WRITER}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi), base_url="http://127.0.0.1", headers=auth
        ) as h:
            planted = f"{balances_job_id(victim)}:{windows()[0]}"
            # The internal task itself: not public.
            r = await h.post(
                f"/v1/queues/{wallet_ops}/jobs",
                json={"name": "fetch-balances", "payload": {"wallet": other}, "id": planted},
            )
            assert r.status_code == 403 and r.json()["error"]["code"] == "job_not_public"
            # A public task of the same queue under the reserved id: refused at $.id.
            attempts = [
                (wallet_ops, "sync-wallet", {"wallet": other}, planted),
                (wallet_ops, "sync-wallet", {"wallet": other}, sync_job_id(victim, "r-1")),
                (analysis, "analyze-pnl", {"wallet": other}, pnl_job_id(victim)),
            ]
            for queue, name, payload, job_id in attempts:
                r = await h.post(
                    f"/v1/queues/{queue}/jobs",
                    json={"name": name, "payload": payload, "id": job_id},
                )
                assert r.status_code == 403, (job_id, r.text)
                assert r.json()["error"]["code"] == "reserved_id"
                assert r.json()["error"]["path"] == "$.id"
                assert await d.app.job(queue, job_id) is None
            # The same public task under an id of the client's own is accepted.
            r = await h.post(
                f"/v1/queues/{wallet_ops}/jobs",
                json={"name": "sync-wallet", "payload": {"wallet": other}, "id": "mine-1"},
            )
            assert r.status_code == 202, r.text


async def test_the_application_never_uses_a_planted_balance(redis_url: str) -> None:
    """A job under the derived id with another wallet in it (however it got there): the
    balance cache raises PayloadMismatch rather than answer with the other wallet's balance."""
    victim, other = two_wallets()
    async with deployment(redis_url, providers=simulated_providers(seed=11)) as d:
        queue = d.queue("wallet-operations")
        planted = [
            await d.app.enqueue(
                "fetch-balances",
                FetchBalances(wallet=other),
                id=f"{balances_job_id(victim)}:{w}",
                queue=queue,
            )
            for w in windows()
        ]
        done = await planted[0].wait(timeout=30)
        assert done.state == "completed" and done.result["wallet"] == other
        assert done.result["lamports"] > 0
        with pytest.raises(streamq.PayloadMismatch) as raised:
            await cached_balances(d.runtime, victim, timeout=30)
        assert raised.value.job_id in {h.id for h in planted}
        assert await read_cached_balances(d.runtime, victim) is None
        # The other wallet's own balance is still answered for that wallet.
        own = await cached_balances(d.runtime, other, timeout=30)
        assert own.wallet == other


async def test_private_tasks_are_refused_while_the_application_starts_them(
    redis_url: str,
) -> None:
    world = simulated_providers(seed=6).chain.world  # type: ignore[attr-defined]
    pair = [a for a, s in world.wallets.items() if s == "holder"][:2]
    async with deployment(redis_url, providers=simulated_providers(seed=6), serve=True) as d:
        h, analysis = d.http, d.queue("analysis-operations")
        payload = {"wallets": pair, "request_id": "r-1"}
        r = await h.post(
            f"/v1/queues/{analysis}/jobs", json={"name": "analyze-similarity", "payload": payload}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "job_not_public"
        assert "dashboard-wallet-analysis" in r.json()["error"]["known"]
        names = [j["name"] for j in (await h.get(f"/v1/queues/{analysis}")).json()["jobs"]]
        assert "analyze-similarity" not in names and "dashboard-wallet-analysis" in names
        # The application's own endpoint starts the same task.
        r = await h.post("/api/v1/jobs/similarity/analyze", json={"walletAddresses": pair})
        assert r.status_code == 202, r.text
        done = await d.app.handle(r.json()["queueName"], r.json()["jobId"]).wait(timeout=60)
        assert done.name == "analyze-similarity" and done.state == "completed"
        # A public one is taken over the generic API, with an id the application does not own.
        body = {"wallet": pair[0], "request_id": "r-2", "enrich_metadata": False}
        r = await h.post(
            f"/v1/queues/{analysis}/jobs",
            json={"name": "dashboard-wallet-analysis", "payload": body, "id": "client-7"},
        )
        assert r.status_code == 202, r.text
        done = await d.app.handle(analysis, "client-7").wait(timeout=60)
        assert done.state == "completed" and done.result["wallet"] == pair[0]


async def test_application_routes_answer_tokens_for_some_queues(redis_url: str) -> None:
    """The application's routes without ``{queue}`` check the queues they touch: a token for
    the analysis and enrichment queues starts and reads dashboard analyses, and is refused
    (or told nothing) for the wallet queue's jobs."""
    world = simulated_providers(seed=6).chain.world  # type: ignore[attr-defined]
    wallet = next(a for a, s in world.wallets.items() if s == "holder")
    async with deployment(redis_url, providers=simulated_providers(seed=6)) as d:
        analysis, enrichment = d.queue("analysis-operations"), d.queue("enrichment-operations")
        wallet_ops = d.queue("wallet-operations")
        team = "team-" + "t" * 32
        spec = f"team={team}:write:{analysis}+read:{analysis}+write:{enrichment}+read:{enrichment}"
        settings = ServerSettings(rate_limit_per_second=0).with_tokens(spec)
        asgi = create_app(settings, d.app, extra_operations=operations())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi),
            base_url="http://127.0.0.1",
            headers={"Authorization": f"Bearer {team}"},
        ) as h:
            r = await h.post(
                "/api/v1/analyses/wallets/dashboard-analysis", json={"walletAddress": wallet}
            )
            assert r.status_code == 202, r.text
            job_id = r.json()["jobId"]
            await d.app.handle(analysis, job_id).wait(timeout=60)
            status = await h.get(f"/api/v1/jobs/{job_id}/status")
            assert status.status_code == 200 and status.json()["state"] == "completed"
            # The wallet queue is outside the token: starting a sync there is refused ...
            r = await h.post("/api/v1/jobs/wallets/sync", json={"walletAddress": wallet})
            assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
            assert wallet_ops in r.json()["error"]["message"]
            # ... and a job of that queue is as unknown to it as a missing one.
            synced = await d.app.enqueue("sync-wallet", {"wallet": wallet}, queue=wallet_ops)
            r = await h.get(f"/api/v1/jobs/{synced.id}/status")
            assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
            health = (await h.get("/health/queues")).json()["queues"]
            assert set(health) == {analysis, enrichment}
