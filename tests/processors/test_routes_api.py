"""The application's endpoints on the server: the deprecated trigger, active jobs per wallet,
the job API by id, /health/queues, and 4xx answers in the server's error envelope."""

from __future__ import annotations

import msgspec

from processors.jobs.types import DashboardOutcome
from processors.providers.simulator import simulated_providers
from tests.support.deployment import deployment


async def test_trigger_active_jobs_and_health(valkey_url: str) -> None:
    providers = simulated_providers(seed=6)
    world = providers.chain.world  # type: ignore[attr-defined]
    w1, w2 = [a for a, s in world.wallets.items() if s == "holder"][:2]
    async with deployment(valkey_url, providers=providers, serve=True) as d:
        analysis = d.queue("analysis-operations")
        healthy = (await d.http.get("/health/queues")).json()
        assert healthy["overallStatus"] == "healthy" and healthy["redis"] is True
        assert set(healthy["queues"]) == set(d.runtime.queues())

        await d.app.pause(analysis)  # hold the jobs so "already running" can be seen
        r = await d.http.post(
            "/api/v1/analyses/wallets/trigger-analysis", json={"walletAddresses": [w1, w2]}
        )
        assert r.status_code == 202 and r.headers["deprecation"] == "true"
        first = r.json()
        assert first["triggeredAnalyses"] == [w1, w2] and first["skippedAnalyses"] == []
        again = (
            await d.http.post(
                "/api/v1/analyses/wallets/trigger-analysis", json={"walletAddresses": [w1]}
            )
        ).json()
        assert again["skippedAnalyses"] == [w1] and again["jobIds"][w1] == first["jobIds"][w1]
        active = (await d.http.get(f"/api/v1/jobs/wallet/{w1}/active")).json()
        assert [j["jobId"] for j in active["jobs"]] == [first["jobIds"][w1]]
        assert active["jobs"][0]["state"] == "queued"
        pending = await d.http.get(f"/api/v1/jobs/{first['jobIds'][w1]}/result")
        assert pending.status_code == 202 and pending.json()["state"] == "queued"
        degraded = (await d.http.get("/health/queues")).json()
        assert degraded["overallStatus"] == "degraded" and degraded["queues"][analysis]["paused"]

        await d.app.resume(analysis)
        out = await d.app.handle(analysis, first["jobIds"][w1]).result(timeout=30)
        assert msgspec.convert(out, DashboardOutcome).pnl.stats.net_sol == world.truth(w1).net_sol
        await d.app.handle(analysis, first["jobIds"][w2]).result(timeout=30)
        assert (await d.http.get(f"/api/v1/jobs/wallet/{w1}/active")).json()["jobs"] == []
        done = await d.http.get(f"/api/v1/jobs/{first['jobIds'][w1]}/result")
        assert done.status_code == 200 and done.json()["state"] == "completed"


async def test_bad_requests_are_4xx_in_the_error_envelope(valkey_url: str) -> None:
    providers = simulated_providers(seed=6)
    world = providers.chain.world  # type: ignore[attr-defined]
    a, b = list(world.wallets)[:2]
    async with deployment(valkey_url, providers=providers, serve=True) as d:
        h = d.http

        async def error(method: str, path: str, status: int, **kw: object) -> str:
            r = await h.request(method, path, **kw)  # type: ignore[arg-type]
            assert r.status_code == status, (path, r.status_code, r.text)
            body = r.json()
            assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
            return str(body["error"]["code"])

        assert await error("GET", "/api/v1/jobs/nope/status", 404) == "job_not_found"
        assert await error("GET", "/api/v1/jobs/a%20b/status", 400) == "invalid_job_id"
        queue = "/api/v1/analyses/similarity/queue"
        assert await error("POST", queue, 400, json={"walletAddresses": [a, a]}) == (
            "not_enough_wallets"
        )
        assert await error(
            "POST", queue, 422, json={"walletAddresses": [a, b], "failureThreshold": 0}
        ) == ("invalid_payload")
        assert await error("POST", queue, 422, json={"wallets": [a, b]}) == "invalid_payload"
        json_type = {"content-type": "application/json"}  # without tokens, writes say JSON
        assert await error("POST", queue, 400, content=b"{nope", headers=json_type) == (
            "malformed_json"
        )
        assert await error("POST", queue, 400, content=b"", headers=json_type) == "bad_request"
        big = b'{"walletAddresses": ["' + b"x" * (2 << 20) + b'"]}'  # over the 1 MiB limit
        assert (
            await error("POST", queue, 413, content=big, headers=json_type) == "payload_too_large"
        )
        wrong = await h.post(queue, json={"walletAddresses": [a, b], "vectorType": 3})
        assert wrong.status_code == 422 and wrong.json()["error"]["path"] == "$.vectorType"
        assert (
            await error(
                "POST", "/api/v1/analyses/similarity", 422, json={"walletAddresses": [a, b]}
            )
            == "insufficient_data"
        )
        assert await error("GET", f"/api/v1/wallets/{a}/pnl", 404) == "not_analyzed"
        assert (
            await error(
                "GET",
                "/api/v1/analyses/wallets/status",
                400,
                params={"walletAddresses": f"{a},bad"},
            )
            == "invalid_wallet_address"
        )
        ok = await h.get("/api/v1/analyses/wallets/status", params={"walletAddresses": f"{a},{b}"})
        assert [s["status"] for s in ok.json()["statuses"]] == ["MISSING", "MISSING"]
        doc = (await h.get("/openapi.json")).json()
        assert {
            "/api/v1/analyses/wallets/dashboard-analysis",
            "/api/v1/jobs/{id}/status",
            "/health/queues",
        } <= set(doc["paths"])
