"""The dashboard analysis end to end: HTTP in, jobs on real Redis, progress over SSE on a real
socket, results against the simulator's ground truth."""

from __future__ import annotations

import statistics
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from processors.jobs.types import DashboardOutcome
from processors.providers.simulator import simulated_providers
from tests.support.deployment import deployment

STYLE_TO_CLASS = {
    "holder": "holder",
    "flipper": "flipper",
    "sniper": "sniper",
    "hf_bot": "high_frequency",
}
DASHBOARD = "/api/v1/analyses/wallets/dashboard-analysis"


async def sse_events(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    """Every event of a job's stream until the server ends it (after the terminal event)."""
    events: list[dict[str, Any]] = []
    data: list[str] = []
    with anyio.fail_after(30):
        async with client.stream("GET", path) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    events.append(msgspec.json.decode("\n".join(data)))
                    data = []
    return events


async def test_dashboard_over_http_matches_ground_truth_with_ordered_progress(
    redis_url: str,
) -> None:
    providers = simulated_providers(seed=3)
    world = providers.chain.world  # type: ignore[attr-defined]
    wallet = next(a for a, s in world.wallets.items() if s == "flipper")
    async with deployment(redis_url, providers=providers, serve=True) as d:
        r = await d.http.post(DASHBOARD, json={"walletAddress": wallet})
        assert r.status_code == 202, r.text
        body = r.json()
        assert set(body) >= {
            "jobId",
            "requestId",
            "status",
            "queueName",
            "estimatedProcessingTime",
            "monitoringUrl",
        }
        assert body["status"] == "queued" and body["queueName"] == d.queue("analysis-operations")
        assert body["estimatedProcessingTime"] == "13 minute(s)"  # a MISSING wallet syncs
        events = await sse_events(d.http, body["eventsUrl"])
        types = [e["type"] for e in events]
        assert types[0] == "queued" and types[-1] == "completed" and "active" in types
        steps = [e["progress"] for e in events if e["type"] == "progress"]
        assert steps == sorted(steps), f"progress went backwards: {steps}"
        assert {5, 10, 15, 40, 50, 65, 80, 85, 100} <= set(steps)

        status = (await d.http.get(body["monitoringUrl"])).json()
        assert status["state"] == "completed" and status["progress"] == 100
        got = await d.http.get(f"/api/v1/jobs/{body['jobId']}/result")
        assert got.status_code == 200
        out = msgspec.convert(got.json()["result"], DashboardOutcome)
        truth = world.truth(wallet)
        assert out.synced and out.sync is not None and out.sync.new_swaps == len(truth.swaps)
        s = out.pnl.stats
        assert (s.realised_sol, s.unrealised_sol, s.fees_sol, s.net_sol) == (
            truth.realised_sol,
            truth.unrealised_sol,
            truth.fees_sol,
            truth.net_sol,
        )
        assert {t.mint: t.net_sol for t in out.pnl.tokens} == {
            m: t.net_sol for m, t in truth.tokens.items()
        }
        b = out.behavior
        assert b.trades == len(truth.swaps) and b.completed_holds == len(truth.hold_seconds)
        assert b.median_hold_seconds == statistics.median(truth.hold_seconds)
        assert b.classification == STYLE_TO_CLASS["flipper"]

        # The enrichment job ran alongside; its result is there once it finishes.
        assert out.enrichment_job_id is not None
        enriched = await d.app.handle(
            d.queue("enrichment-operations"), out.enrichment_job_id
        ).result(timeout=20)
        assert set(enriched) == {wallet}
        held = {t.mint for t in world.balances(wallet).tokens}
        assert {t["mint"] for t in enriched[wallet]["tokens"]} == held

        # The stored results are what the HTTP reads serve.
        summary = (await d.http.get(f"/api/v1/wallets/{wallet}/summary")).json()
        assert summary["status"] == "FRESH" and summary["swapCount"] == len(truth.swaps)
        assert summary["pnl"]["net_sol"] == truth.net_sol
        assert summary["behavior"]["classification"] == "flipper"
        pnl = (await d.http.get(f"/api/v1/wallets/{wallet}/pnl")).json()
        assert pnl["stats"]["net_sol"] == truth.net_sol
        beh = (await d.http.get(f"/api/v1/wallets/{wallet}/behavior")).json()
        assert beh["classification"] == "flipper"
        statuses = (
            await d.http.get("/api/v1/analyses/wallets/status", params={"walletAddresses": wallet})
        ).json()
        assert statuses["statuses"][0]["status"] == "FRESH"
        progress = (await d.http.get(f"/api/v1/jobs/{body['jobId']}/progress")).json()
        assert progress == {
            "jobId": body["jobId"],
            "state": "completed",
            "progress": 100.0,
            "message": "done",
        }


async def test_two_concurrent_dashboards_never_interleave_and_share_one_sync(
    valkey_url: str,
) -> None:
    """The queueing behaviour (``ifRunning: "queue"``): the second job waits for the wallet's
    lock, then finds the wallet freshly synced."""
    providers = simulated_providers(seed=5)
    world = providers.chain.world  # type: ignore[attr-defined]
    wallet = next(a for a, s in world.wallets.items() if s == "hf_bot")
    async with deployment(valkey_url, providers=providers, serve=True) as d:
        first, second = await _both(d.http, wallet)
        handles = [
            d.app.handle(d.queue("analysis-operations"), b["jobId"]) for b in (first, second)
        ]
        outs = [msgspec.convert(await h.result(timeout=30), DashboardOutcome) for h in handles]
    a, b = sorted(outs, key=lambda o: o.locked_at)
    print(
        f"lock held {a.locked_at:.3f}-{a.released_at:.3f} then "
        f"{b.locked_at:.3f}-{b.released_at:.3f}"
    )
    assert a.released_at <= b.locked_at, "the two analyses interleaved"
    assert a.synced and not b.synced, "the second did not reuse the first's fresh sync"
    assert a.pnl == b.pnl and a.behavior == b.behavior
    pages = -(-len(world.swaps(wallet)) // 100)
    assert providers.chain.calls == pages + 1  # type: ignore[attr-defined]  # + 1 balance fetch


async def _both(client: httpx.AsyncClient, wallet: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []

    async def post() -> None:
        r = await client.post(DASHBOARD, json={"walletAddress": wallet, "ifRunning": "queue"})
        assert r.status_code == 202
        bodies.append(r.json())

    async with anyio.create_task_group() as tg:
        tg.start_soon(post)
        tg.start_soon(post)
    assert bodies[0]["jobId"] != bodies[1]["jobId"]
    return bodies


async def test_a_second_dashboard_of_a_busy_wallet_is_answered_at_once(valkey_url: str) -> None:
    """The plans' behaviour by default: while one analysis of the wallet is unfinished, another
    request gets 409 naming it (however many race), and nothing more is queued."""
    providers = simulated_providers(seed=5)
    world = providers.chain.world  # type: ignore[attr-defined]
    wallet = next(a for a, s in world.wallets.items() if s == "flipper")
    async with deployment(valkey_url, providers=providers, serve=True) as d:
        analysis = d.queue("analysis-operations")
        await d.app.pause(analysis)
        answers: list[httpx.Response] = []

        async def post() -> None:
            answers.append(await d.http.post(DASHBOARD, json={"walletAddress": wallet}))

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(post)
        codes = sorted(r.status_code for r in answers)
        assert codes == [202, 409, 409, 409], [r.text for r in answers]
        [accepted] = [r.json() for r in answers if r.status_code == 202]
        assert accepted["enrichmentJobId"] and accepted["enrichmentResultsUrl"].endswith(
            f"/{accepted['enrichmentJobId']}/enrichment"
        )
        for busy in (r.json() for r in answers if r.status_code == 409):
            assert busy["error"]["code"] == "analysis_in_progress"
            assert busy["jobId"] == accepted["jobId"] and busy["status"] == "queued"
            assert busy["monitoringUrl"] == accepted["monitoringUrl"]
        assert (await d.app.stats(analysis)).waiting == 1
        await d.app.resume(analysis)
        await d.app.handle(analysis, accepted["jobId"]).wait(timeout=30)
        # Finished: the wallet is free again.
        again = await d.http.post(DASHBOARD, json={"walletAddress": wallet})
        assert again.status_code == 202 and again.json()["jobId"] != accepted["jobId"]


@pytest.mark.parametrize("bad", ["nope", "0OIl" * 10, "", "1" * 45])
async def test_invalid_addresses_are_named_in_a_400(valkey_url: str, bad: str) -> None:
    good = "So11111111111111111111111111111111111111112"
    async with deployment(valkey_url, serve=True) as d:
        r = await d.http.post(DASHBOARD, json={"walletAddress": bad})
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["code"] == "invalid_wallet_address" and repr(bad) in err["message"]
        r = await d.http.post(
            "/api/v1/analyses/similarity/queue", json={"walletAddresses": [good, bad, "x"]}
        )
        assert r.status_code == 400
        assert r.json()["error"]["known"] == [bad, "x"]
        r = await d.http.get(f"/api/v1/wallets/{bad or 'z'}/summary")
        assert r.status_code == 400
