"""01's admin aliases (queue stats, pause, resume by the plans' queue names), the maintenance
view, the similarity job alias, and their scopes in the OpenAPI document."""

from __future__ import annotations

import httpx

from processors.api import operations
from processors.config import QUEUES
from processors.providers.simulator import simulated_providers
from server import ServerSettings, create_app
from tests.support.deployment import deployment


async def test_admin_queue_stats_pause_and_resume(valkey_url: str) -> None:
    providers = simulated_providers(seed=6)
    wallet = next(iter(providers.chain.world.wallets))  # type: ignore[attr-defined]
    async with deployment(valkey_url, providers=providers, serve=True) as d:
        h = d.http
        paused = await h.post("/api/v1/admin/queues/wallet-operations/pause")
        assert paused.status_code == 200
        assert paused.json() == {
            "queueName": "wallet-operations",
            "queue": d.queue("wallet-operations"),
            "paused": True,
        }
        r = await h.post("/api/v1/jobs/wallets/sync", json={"walletAddress": wallet})
        job = r.json()
        stats = (await h.get("/api/v1/admin/queues/stats")).json()["queues"]
        assert set(stats) == set(QUEUES)
        assert stats["wallet-operations"]["paused"] and stats["wallet-operations"]["waiting"] == 1
        assert stats["wallet-operations"]["queue"] == d.queue("wallet-operations")
        resumed = await h.post(f"/api/v1/admin/queues/{d.queue('wallet-operations')}/resume")
        assert resumed.status_code == 200 and resumed.json()["paused"] is False
        await d.app.handle(job["queueName"], job["jobId"]).wait(timeout=30)
        stats = (await h.get("/api/v1/admin/queues/stats")).json()["queues"]
        assert stats["wallet-operations"]["completed"] == 1
        assert stats["wallet-operations"]["waiting"] == 0
        missing = await h.post("/api/v1/admin/queues/nope/pause")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_queue"

        maintenance = (await h.get("/api/v1/admin/maintenance")).json()["schedules"]
        assert [
            (m["name"], m["cron"], m["keepCompleted"], m["keepFailed"]) for m in maintenance
        ] == [
            ("cleanup-old-cache", "0 2 * * *", 5, 10),
            ("refresh-token-metadata", "0 */6 * * *", 3, 5),
        ]

        world = providers.chain.world  # type: ignore[attr-defined]
        pair = [a for a, s in world.wallets.items() if s == "holder"][:2]
        sim = await h.post("/api/v1/jobs/similarity/analyze", json={"walletAddresses": pair})
        assert sim.status_code == 202
        body = sim.json()
        done = await d.app.handle(body["queueName"], body["jobId"]).wait(timeout=60)
        assert done.name == "analyze-similarity" and done.state == "completed"

        spec = (await h.get("/openapi.json")).json()
        admin = spec["paths"]["/api/v1/admin/queues/{queueName}/pause"]["post"]
        bulk = spec["paths"]["/api/v1/jobs/bulk/{bulkJobId}/status"]["get"]
        assert "200" in admin["responses"] and "200" in bulk["responses"]
        for path in (
            "/api/v1/jobs/wallets/sync",
            "/api/v1/jobs/wallets/analyze",
            "/api/v1/jobs/similarity/analyze",
            "/api/v1/admin/queues/stats",
            "/api/v1/admin/queues/{queueName}/resume",
            "/api/v1/jobs/{id}/enrichment",
            "/api/v1/jobs/{id}/enrichment/events",
            "/api/v1/results/{requestId}",
        ):
            assert path in spec["paths"], path


async def test_admin_aliases_need_the_admin_scope(valkey_url: str) -> None:
    writer, boss = "w" * 32, "b" * 32  # the server refuses tokens under 32 characters
    settings = ServerSettings(rate_limit_per_second=0).with_tokens(
        f"{writer}:read+write,{boss}:admin"
    )
    async with deployment(valkey_url, providers=simulated_providers(seed=6)) as d:
        asgi = create_app(settings, d.app, extra_operations=operations())
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as h:
            for method, path in [
                ("GET", "/api/v1/admin/queues/stats"),
                ("POST", "/api/v1/admin/queues/wallet-operations/pause"),
                ("POST", "/api/v1/admin/queues/wallet-operations/resume"),
                ("GET", "/api/v1/admin/maintenance"),
            ]:
                denied = await h.request(
                    method, path, headers={"Authorization": f"Bearer {writer}"}
                )
                assert denied.status_code == 403, (path, denied.text)
                allowed = await h.request(method, path, headers={"Authorization": f"Bearer {boss}"})
                assert allowed.status_code == 200, (path, allowed.text)
