"""Workers in ``GET /v1/workers`` and on the workers page: concurrency, slots in use and the
jobs each runs, published with the worker's roster; departed ones greyed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

import streamq
from server import ServerSettings, create_app, running_server


async def _until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    for _ in range(400):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_workers_show_slots_in_use_and_the_jobs_they_run(
    app_factory: Callable[..., streamq.App], uniq: Callable[[str], str]
) -> None:
    app = app_factory()
    queue = uniq("wk")
    release = asyncio.Event()

    @app.task("hold", queue=queue)
    async def hold(ctx: streamq.Context, n: int) -> int:
        await release.wait()
        return n

    handles = [await app.enqueue("hold", i, queue=queue) for i in range(2)]
    settings = ServerSettings(rate_limit_per_second=0, stats_sample_seconds=0)
    # A short heartbeat TTL: the roster (and the load with it) is published every 0.5 s.
    worker = streamq.Worker(app, [queue], concurrency=3, heartbeat_ttl=1.5, handle_signals=False)
    running = asyncio.create_task(worker.run())
    try:
        async with (
            running_server(create_app(settings, app)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):

            async def mine() -> dict[str, Any] | None:
                listed = (await client.get("/v1/workers")).json()["workers"]
                return next((w for w in listed if w["name"] == worker.consumer), None)

            async def busy() -> dict[str, Any] | None:
                w = await mine()
                return w if w and len(w["current_jobs"]) == 2 else None

            shown = await _until(busy, "both jobs listed")
            assert shown["alive"] is True
            assert shown["concurrency"] == 3 and shown["in_use"] == 2
            assert {j["id"] for j in shown["current_jobs"]} == {h.id for h in handles}
            for job in shown["current_jobs"]:
                assert job["queue"] == queue and job["deliveries"] == 1
                assert job["started_at"] > 0 and job["lease_age"] >= 0
            page = (await client.get("/ui/workers")).text
            row = page.split(f"{worker.consumer}", 1)[1].split("</tr>", 1)[0]
            assert '<td class="n" data-k="slots">2 / 3</td>' in row
            assert all(h.id in row for h in handles)

            release.set()
            for h in handles:
                await h.result(timeout=30)

            async def idle() -> dict[str, Any] | None:
                w = await mine()
                return w if w and not w["current_jobs"] and w["in_use"] == 0 else None

            await _until(idle, "the worker to show no job")
            worker.stop()
            await asyncio.wait_for(running, 30)

            async def departed() -> dict[str, Any] | None:
                w = await mine()
                return w if w and not w["alive"] else None

            gone = await _until(departed, "the worker to be listed as departed")
            assert gone["in_use"] is None and gone["current_jobs"] == []
            page = (await client.get("/ui/workers")).text
            row_start = page.rindex("<tr", 0, page.index(worker.consumer))
            assert page[row_start:].startswith('<tr class="departed">')
    finally:
        release.set()
        worker.stop()
        await asyncio.wait_for(running, 30)
