"""The dashboard over HTTP (no browser): access, CSRF, security headers, and the JSON routes
its pages show (workers, schedules)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
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
    app_factory: Callable[..., streamq.App], uniq: Callable[[str], str]
) -> None:
    """Ten open overview pages: one event feed per queue, and queue stats read from Redis at
    most once per second between them, however many pages watch."""
    from server import create_app
    from server.context import ServerState
    from server.ui.live import Overview, live_stream

    app = app_factory()
    queues = [uniq("ov"), uniq("ov")]
    for q in queues:
        await app.register_queue(q)
    starlette = create_app(_settings(), app)
    state, overview = starlette.state.streamq, starlette.state.ui_overview
    assert isinstance(state, ServerState) and isinstance(overview, Overview)
    reads: list[str] = []
    stats = state.metrics.stats

    async def counted(queue: str) -> streamq.QueueStats:
        reads.append(queue)
        return await stats(queue)

    state.metrics.stats = counted  # type: ignore[method-assign]
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
