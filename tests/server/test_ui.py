"""The dashboard over HTTP (no browser): access, CSRF, security headers, and the JSON routes
its pages show (workers, schedules)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest
from server_support import Served, secret, token_spec

import streamq
from server import ServerSettings

TOKENS = token_spec("rtok:read,wtok:write,atok:admin,rwtok:read+write")
SERVE = Callable[..., contextlib.AbstractAsyncContextManager[Served]]


def _settings(tokens: str = "") -> ServerSettings:
    base = ServerSettings(heartbeat_seconds=0.5, rate_limit_per_second=0, stats_sample_seconds=0)
    return base.with_tokens(tokens) if tokens else base


@contextlib.asynccontextmanager
async def _browser(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    """A client that behaves like a same-origin page: keeps cookies, sends Origin."""
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        client.headers["origin"] = served.url
        yield client


async def _login(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/ui/login")
    csrf = client.cookies["streamq_csrf"]
    assert form.status_code == 200
    return await client.post("/ui/login", data={"token": token, "csrf": csrf, "next": "/ui/"})


async def test_root_redirects_to_the_dashboard(served: Served) -> None:
    response = await served.client.get("/")
    assert response.status_code == 307
    assert response.headers["location"] == "/ui"


async def test_pages_carry_security_headers_and_no_inline_script(served: Served) -> None:
    response = await served.client.get("/ui/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in response.text and "onclick" not in response.text
    assert served.queue in response.text


async def test_login_read_token_sees_no_actions_and_gets_403_when_posting(serve: SERVE) -> None:
    async with serve(_settings(TOKENS)) as served, _browser(served) as browser:
        assert (await browser.get("/ui/")).status_code == 303  # to the login form
        bad = await _login(browser, "nope")
        assert bad.status_code == 401 and "not valid" in bad.text
        ok = await _login(browser, secret("rtok"))
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
        page = await browser.get(f"/ui/queues/{served.queue}")
        assert page.status_code == 200
        assert 'data-action="pause"' not in page.text
        assert "read only" in page.text
        csrf = browser.cookies["streamq_csrf"]
        refused = await browser.post(
            f"/ui/api/queues/{served.queue}/pause", headers={"x-csrf-token": csrf}
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "insufficient_scope"
        # The same browser signed in as admin sees the button and may act.
        await _login(browser, secret("atok"))
        page = await browser.get(f"/ui/queues/{served.queue}")
        assert 'data-action="pause"' in page.text
        done = await browser.post(
            f"/ui/api/queues/{served.queue}/pause", headers={"x-csrf-token": csrf}
        )
        assert done.status_code == 200 and done.json()["paused"] is True


async def test_cross_site_and_tokenless_posts_are_refused(serve: SERVE) -> None:
    async with serve(_settings(TOKENS)) as served, _browser(served) as browser:
        await _login(browser, secret("atok"))
        csrf = browser.cookies["streamq_csrf"]
        path = f"/ui/api/queues/{served.queue}/pause"
        evil = await browser.post(
            path, headers={"x-csrf-token": csrf, "origin": "https://evil.example"}
        )
        assert evil.status_code == 403 and evil.json()["error"]["code"] == "csrf"
        cross = await browser.post(
            path, headers={"x-csrf-token": csrf, "sec-fetch-site": "cross-site"}
        )
        assert cross.status_code == 403
        no_token = await browser.post(path)
        assert no_token.status_code == 403 and no_token.json()["error"]["code"] == "csrf"
        assert (await served.app.stats(served.queue)).paused is False


async def test_workers_and_schedules_are_in_the_api(served: Served) -> None:
    app = served.app
    app.schedule("greet", {"who": "cron"}, every=3600, queue=served.queue, id="hourly-greet")
    worker = asyncio.create_task(_run_worker(app, served.queue))
    try:
        for _ in range(100):
            body = (await served.client.get("/v1/workers")).json()
            mine = [w for w in body["workers"] if served.queue in w["queues"]]
            if mine:
                break
            await asyncio.sleep(0.1)
        assert mine and mine[0]["alive"] is True and mine[0]["pid"] is not None
        schedules = (await served.client.get("/v1/schedules")).json()["schedules"]
        found = [s for s in schedules if s["id"] == "hourly-greet"]
        assert found and found[0]["every"] == 3600 and found[0]["next_run"] > 0
        run = await served.client.post(f"/v1/schedules/{served.queue}/hourly-greet/run")
        assert run.status_code == 202
        job = await app.handle(served.queue, run.json()["id"]).result(timeout=20)
        assert job == "hello cron"
        document = (await served.client.get("/openapi.json")).json()
        assert {"/v1/workers", "/v1/schedules"} <= set(document["paths"])
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def _run_worker(app: object, queue: str) -> None:
    import streamq

    assert isinstance(app, streamq.App)
    await streamq.Worker(app, [queue], concurrency=2, handle_signals=False).run()


async def test_docs_is_swagger_ui_from_the_package_and_descriptions_stand_alone(
    served: Served,
) -> None:
    page = await served.client.get("/docs")
    assert "/ui/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    bundle = await served.client.get("/ui/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    licence = await served.client.get("/ui/static/vendor/swagger-ui/LICENSE")
    assert "Apache License" in licence.text
    document = (await served.client.get("/openapi.json")).json()
    for methods in document["paths"].values():
        for op in methods.values():
            assert "``" not in op["description"] and "DESIGN" not in op["description"]


async def test_open_overviews_share_one_feed_per_queue_and_one_snapshot(
    app_factory: Callable[..., streamq.App],
    uniq: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten open overview pages: one event feed per queue, and queue stats read from Redis at
    most once per second between them, however many pages watch."""
    from server import create_app
    from server.context import ServerState
    from server.ui import live
    from server.ui.live import Overview, live_stream

    app = app_factory()
    queues = [uniq("ov"), uniq("ov")]
    for q in queues:
        await app.register_queue(q)
    starlette = create_app(_settings(), app)
    state, overview = starlette.state.streamq, starlette.state.ui_overview
    assert isinstance(state, ServerState) and isinstance(overview, Overview)
    reads: list[str] = []
    read = live.read_stats

    async def counted(state: ServerState, queue: str) -> Any:
        reads.append(queue)
        return await read(state, queue)

    monkeypatch.setattr(live, "read_stats", counted)
    pages = [live_stream(state, overview, idle_seconds=0.2, tick=0.05) for _ in range(10)]
    try:
        first = [await anext(page) for page in pages]
        assert all(chunk.startswith(b"event: overview") for chunk in first)
        mine = {q: f for q, f in state.hub.feeds.items() if q in queues}
        assert set(mine) == set(queues)
        assert all(len(feed.subscribers) == 10 for feed in mine.values())
        reads.clear()
        started = asyncio.get_running_loop().time()

        async def watch(page: AsyncIterator[bytes]) -> None:
            while asyncio.get_running_loop().time() - started < 2.5:
                await anext(page)

        await asyncio.gather(*(watch(page) for page in pages))
        names = len(await state.queue_names())
        # 10 pages re-checking every 0.2 s for 2.5 s would be ~125 reads per queue unshared.
        assert len(reads) <= 4 * names, reads
    finally:
        for page in pages:
            await page.aclose()  # type: ignore[attr-defined]
        assert not any(q in state.hub.feeds for q in queues)
        await state.hub.close()


SCOPED = token_spec(
    # srv-???????? is the served queue alone (not srv-other-...); srv-other-* the other one.
    "mine:admin:srv-????????,peek:meta:srv-????????,mixed:read:srv-????????+admin:srv-other-*"
)


async def _run_until(
    app: streamq.App, queues: list[str], done: Callable[[], Awaitable[bool]]
) -> None:
    worker = streamq.Worker(app, queues, concurrency=2, handle_signals=False)
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(200):
            if await done():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the worker did not get there")
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def _first_overview(client: httpx.AsyncClient) -> list[str]:
    """The queue names of the first snapshot the overview's live stream sends."""
    async with client.stream("GET", "/ui/live") as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                body = msgspec.json.decode(line[5:])
                return [q["name"] for q in body["queues"]]
    raise AssertionError("the stream ended without a snapshot")


async def test_a_token_for_some_queues_sees_and_acts_on_those_only(serve: SERVE) -> None:
    async with serve(_settings(SCOPED)) as served, _browser(served) as browser:
        mine, other, app = served.queue, served.other_queue, served.app
        await app.register_queue(other)
        app.schedule("greet", {"who": "cron"}, every=3600, queue=mine, id="mine-hourly")
        app.schedule("anything", {}, every=3600, queue=other, id="other-hourly")
        job = await app.enqueue("greet", {"who": "p4yl0ad-marker"}, queue=mine)
        theirs = await app.enqueue("anything", {"k": "v"}, queue=other)
        await _login(browser, secret("mine"))

        overview = await browser.get("/ui/")
        assert overview.status_code == 200
        assert mine in overview.text and other not in overview.text
        assert await _first_overview(browser) == [mine]
        assert "admin of some queues" in overview.text
        page = await browser.get(f"/ui/queues/{mine}")
        assert 'data-action="pause"' in page.text and 'data-bulk="retry"' in page.text
        # Another queue's pages are refused, as is a queue that does not exist (the answer
        # does not tell which queues exist).
        for path in (
            f"/ui/queues/{other}",
            f"/ui/queues/{other}/jobs/{theirs.id}",
            "/ui/queues/no-such-queue",
        ):
            refused = await browser.get(path)
            assert refused.status_code == 403, path
            assert "lacks the &#39;read&#39; scope for queue" in refused.text
        schedules = await browser.get("/ui/schedules")
        assert "mine-hourly" in schedules.text and "other-hourly" not in schedules.text
        assert 'data-run="mine-hourly"' in schedules.text
        job_page = await browser.get(f"/ui/queues/{mine}/jobs/{job.id}")
        assert "p4yl0ad-marker" in job_page.text and 'data-job-action="cancel"' in job_page.text

        # Workers: one per queue; this token sees the one serving its queue only.
        worker_mine = streamq.Worker(app, [mine], concurrency=1, handle_signals=False)
        worker_other = streamq.Worker(app, [other], concurrency=1, handle_signals=False)
        tasks = [asyncio.create_task(w.run()) for w in (worker_mine, worker_other)]
        try:
            for _ in range(200):
                text = (await browser.get("/ui/workers")).text
                if mine in text:
                    break
                await asyncio.sleep(0.05)
            assert mine in text and other not in text
            for _ in range(200):
                if await app.handle(other, theirs.id).state() == "completed":
                    break
                await asyncio.sleep(0.05)
        finally:
            for w in (worker_mine, worker_other):
                w.stop()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def test_a_meta_token_sees_counts_and_states_never_payloads_or_errors(
    serve: SERVE,
) -> None:
    async with serve(_settings(SCOPED)) as served, _browser(served) as browser:
        mine, app = served.queue, served.app
        failed = await app.enqueue("steps", {"steps": 1, "fail": True}, queue=mine)

        async def dead() -> bool:
            return await app.handle(mine, failed.id).state() == "dead"

        await _run_until(app, [mine], dead)
        waiting = await app.enqueue("greet", {"who": "p4yl0ad-marker"}, queue=mine)
        await _login(browser, secret("peek"))
        overview = await browser.get("/ui/")
        assert overview.status_code == 200 and mine in overview.text
        assert "counts only" in overview.text
        queue_page = await browser.get(f"/ui/queues/{mine}")
        assert queue_page.status_code == 200
        assert "data-action=" not in queue_page.text and "data-bulk=" not in queue_page.text
        for job in (waiting, failed):
            page = await browser.get(f"/ui/queues/{mine}/jobs/{job.id}")
            assert page.status_code == 200
            assert "p4yl0ad-marker" not in page.text and "asked to fail" not in page.text
            assert "Hidden: this token may see the job's state" in page.text
            assert "data-job-action" not in page.text
        assert 'id="job-state" class="state state-dead">dead<' in page.text
        letters = await browser.get("/ui/dead-letters")
        assert letters.status_code == 200 and failed.id in letters.text
        assert "asked to fail" not in letters.text and "data-replay" not in letters.text
        # Signed in with read on the queue, the same pages show what was withheld.
        await _login(browser, secret("mixed"))
        page = await browser.get(f"/ui/queues/{mine}/jobs/{failed.id}")
        assert "asked to fail" in page.text and "data-job-action" not in page.text
        assert "asked to fail" in (await browser.get("/ui/dead-letters")).text
        waiting_page = await browser.get(f"/ui/queues/{mine}/jobs/{waiting.id}")
        assert "p4yl0ad-marker" in waiting_page.text
        other_page = await browser.get(f"/ui/queues/{served.other_queue}")
        assert other_page.status_code == 200 and 'data-action="pause"' in other_page.text
        assert 'data-action="pause"' not in (await browser.get(f"/ui/queues/{mine}")).text


async def test_overview_rates_are_the_read_models(served: Served) -> None:
    """Done/s and the failure rate on the overview and the queue page are the figures of
    GET /v1/queues (the read model's events over the last minute), not a sampler's."""
    app, queue = served.app, served.queue
    handles = [await app.enqueue("greet", {"who": f"n{i}"}, queue=queue) for i in range(9)]
    failed = await app.enqueue("steps", {"steps": 1, "fail": True}, queue=queue)

    async def all_finished() -> bool:
        states = [await h.state() for h in [*handles, failed]]
        return all(s in ("completed", "dead") for s in states)

    await _run_until(app, [queue], all_finished)
    listed = (await served.client.get("/v1/queues")).json()["queues"]
    rates = next(q for q in listed if q["name"] == queue)["rates"]
    assert rates["completed"] == 0.15 and rates["dead"] > 0  # 9 and 1 in the last minute
    page = await served.client.get("/ui/")
    row = page.text.split(f'<tr data-queue="{queue}">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="n" data-k="completed_per_s">0.15</td>' in row
    # 1 of 10 failed; the rates are rounded to 3 decimals, so the share is computed as a
    # script reading GET /v1/queues would (and lands near 10 %).
    failing = (rates["retrying"] + rates["dead"]) / (
        rates["completed"] + rates["retrying"] + rates["dead"]
    )
    shown = f"{round(failing * 100, 1)} %"
    assert 9.5 < failing * 100 < 10.5
    assert f'<td class="n" data-k="failure_rate">{shown}</td>' in row
    assert "dead letters growing" in row
    queue_page = await served.client.get(f"/ui/queues/{queue}")
    assert f"Throughput 0.15 done/s · failing {shown}" in queue_page.text
