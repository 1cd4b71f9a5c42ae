"""03's progressive enrichment over HTTP on a real socket: an SSE client sees batches of
enriched holdings while the job still runs, and what it saw is the start of what the job ends
with; results by request id are served while within ``CACHE.results_ttl``."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import msgspec

from processors.analysis.similarity import SimilarityResult
from processors.providers.sim_world import WorldConfig
from processors.providers.simulator import simulated_providers
from tests.support.deployment import deployment

EMPTY = SimilarityResult(
    wallets=[], skipped=[], vector_type="capital", pairs=[], shared_token_counts={}, average_score=0
)


async def sse(client: httpx.AsyncClient, path: str, on_event: Any) -> None:
    """Calls ``on_event(name, id, data)`` for each event until the server ends the stream."""
    name, event_id, data = "message", None, []
    async with client.stream("GET", path) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                await on_event(name, event_id, msgspec.json.decode("\n".join(data)))
                name, event_id, data = "message", None, []


async def test_sse_client_sees_a_prefix_of_the_final_result_while_the_job_runs(
    valkey_url: str,
) -> None:
    # A world with enough held tokens for several batches; each call takes 0.3 s, so the
    # batches land one by one.
    world_config = WorldConfig(seed=4, holders=25, flippers=25, snipers=20)
    providers = simulated_providers(seed=4, latency=0.3, world=world_config)
    world = providers.chain.world  # type: ignore[attr-defined]
    wallets: list[str] = []
    mints: set[str] = set()
    for w in world.wallets:
        held = {t.mint for t in (await providers.chain.get_balances(w)).tokens}
        if held:
            wallets.append(w)
            mints |= held
        if len(mints) > 65:
            break
    async with deployment(valkey_url, providers=providers, serve=True) as d:
        queue = d.queue("enrichment-operations")
        await d.app.pause(queue)  # the client is listening before the first batch
        handle = await d.app.enqueue(
            "enrich-token-balances", {"wallets": wallets, "request_id": "r-prog"}, id="enrich-prog"
        )
        seen_running: list[dict[str, Any]] = []
        seen: list[dict[str, Any]] = []
        ending: list[tuple[str, Any]] = []

        async def on_event(name: str, event_id: str | None, data: Any) -> None:
            if name != "batch":
                ending.append((name, data))
                return
            assert event_id == str(data["index"])
            seen.append(data)
            job = await d.app.job(queue, handle.id)
            if job is not None and not job.finished:
                seen_running.append(data)

        async def resume_when_listening() -> None:
            await anyio.sleep(0.3)
            await d.app.resume(queue)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(resume_when_listening)
                await sse(d.http, f"/api/v1/jobs/{handle.id}/enrichment/events", on_event)
        final = (await d.http.get(f"/api/v1/jobs/{handle.id}/enrichment")).json()
        result = await handle.result(timeout=10)
        by_request = (await d.http.get("/api/v1/results/r-prog")).json()

    assert ending == [("completed", {"jobId": handle.id, "state": "completed", "error": None})]
    assert final["complete"] and final["state"] == "completed"
    batches = final["batches"]
    assert len(batches) >= 3 and [b["index"] for b in batches] == list(range(len(batches)))
    # Seen before the job completed: the start of the final batches, exactly.
    assert len(seen_running) >= 2
    assert seen_running == batches[: len(seen_running)]
    assert seen == batches
    # Together the batches are exactly the job's final result, holding by holding.
    published = {
        (h["wallet"], h["token"]["mint"]): h["token"] for b in batches for h in b["tokens"]
    }
    finished = {(w, t["mint"]): t for w, ew in result.items() for t in ew["tokens"]}
    assert published == finished and len(finished) >= len(mints)
    for (_, mint), token in finished.items():
        if token["symbol"] is not None:
            assert token["symbol"] == world.tokens[mint].symbol
    assert by_request["enrichment"]["batches"] == batches
    assert by_request["jobs"]["enrichment"]["jobId"] == handle.id


async def test_results_by_request_id_honour_the_ttl(valkey_url: str) -> None:
    async with deployment(valkey_url, providers=simulated_providers(seed=4), serve=True) as d:
        store = d.runtime.store
        now = int(time.time())
        store.save_similarity("req-fresh", EMPTY, now=now - 60)
        store.save_similarity("req-stale", EMPTY, now=now - 2 * 3600)  # results_ttl is 1 h
        fresh = await d.http.get("/api/v1/results/req-fresh")
        assert fresh.status_code == 200 and fresh.json()["similarity"] == msgspec.to_builtins(EMPTY)
        stale = await d.http.get("/api/v1/results/req-stale")
        assert stale.status_code == 404 and stale.json()["error"]["code"] == "results_not_found"
        assert (await d.http.get("/api/v1/results/never")).status_code == 404

        wallet = next(iter(d.runtime.providers.chain.world.wallets))  # type: ignore[attr-defined]
        r = await d.http.post(
            "/api/v1/analyses/wallets/dashboard-analysis", json={"walletAddress": wallet}
        )
        accepted = r.json()
        await d.app.handle(accepted["queueName"], accepted["jobId"]).wait(timeout=30)
        await d.app.handle(d.queue("enrichment-operations"), accepted["enrichmentJobId"]).wait(
            timeout=30
        )
        got = (await d.http.get(accepted["resultsUrl"])).json()
        assert got["requestId"] == accepted["requestId"]
        assert got["jobs"]["dashboard"]["state"] == "completed"
        assert got["jobs"]["dashboard"]["result"]["wallet"] == wallet
        assert got["jobs"]["enrichment"]["jobId"] == accepted["enrichmentJobId"]
        assert got["enrichment"]["complete"]
