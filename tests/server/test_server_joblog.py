"""A job's log over HTTP: ``GET /v1/queues/{q}/jobs/{id}/logs`` (read scope), and its lines
as ``log`` events of the job's event stream, resumable by ``Last-Event-ID``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import httpx
from server_support import Served, bearer, collect_events, register_tasks, secret, token_spec

from server import ServerSettings, create_app, running_server
from streamq import App, Context
from streamq._codec import decode_spec
from streamq._context import Delivery
from streamq._scripts import Settlement
from streamq._types import LANES


async def _log_and_finish(app: App, queue: str, job_id: str, lines: list[str]) -> None:
    """Runs the job by hand: fetches it, logs ``lines``, completes it."""
    await app.enqueue("greet", {"who": "x"}, id=job_id)
    [f] = (
        await app.scripts.fetch(
            queue, consumer="w", count=1, promote_limit=10, may_take_suspect=True, lanes=LANES
        )
    ).jobs
    d = Delivery(
        queue=queue,
        lane=f.lane,
        entry_id=f.entry_id,
        job_id=f.job_id,
        spec=decode_spec(f.spec),
        attempt=f.attempt,
        fence=f.fence,
        deliveries=f.deliveries,
    )
    for i, line in enumerate(lines):
        assert await Context(app, d).log(line, n=i)
    await app.scripts.settle(
        queue, [Settlement("completed", f.job_id, f.lane, f.entry_id, f.fence, ttl_ms=600_000)]
    )


async def test_logs_route_and_log_events(served: Served) -> None:
    app, q, c = served.app, served.queue, served.client
    await _log_and_finish(app, q, "g", ["fetching", "parsing", "saving"])

    r = await c.get(f"/v1/queues/{q}/jobs/g/logs")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["queue"], body["id"], body["dropped"]) == (q, "g", 0)
    assert [(ln["message"], ln["fields"], ln["attempt"]) for ln in body["lines"]] == [
        ("fetching", {"n": 0}, 1),
        ("parsing", {"n": 1}, 1),
        ("saving", {"n": 2}, 1),
    ]
    missing = await c.get(f"/v1/queues/{q}/jobs/nobody/logs")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"
    assert (await c.get("/v1/queues/no-such-queue/jobs/g/logs")).status_code == 404
    assert (await c.get(f"/v1/queues/{q}/jobs/bad%20id/logs")).status_code == 400

    # The job's event stream carries each line, between active and completed.
    path = f"/v1/queues/{q}/jobs/g/events"
    events = await collect_events(c, path)
    assert [m.event for m in events] == ["queued", "active", "log", "log", "log", "completed"]
    assert [m.json()["message"] for m in events if m.event == "log"] == [
        "fetching",
        "parsing",
        "saving",
    ]
    # Resuming after the first line gives exactly the rest.
    resumed = await collect_events(c, path, headers={"Last-Event-ID": events[2].id or ""})
    assert [m.id for m in resumed] == [m.id for m in events[3:]]

    spec = (await c.get("/openapi.json")).json()
    assert "get" in spec["paths"]["/v1/queues/{queue}/jobs/{id}/logs"]


async def test_logs_need_read_scope(valkey_url: str, uniq: Callable[[str], str]) -> None:
    q, other = uniq("lgq"), uniq("lgo")
    settings = ServerSettings(rate_limit_per_second=0).with_tokens(
        token_spec("meta:meta:lgq-*,reader:read:lgq-*")
    )
    app = App("log-scopes", redis_url=valkey_url)
    register_tasks(app, q, other)
    try:
        await app.connect()
        await _log_and_finish(app, q, "j", ["secret detail"])
        async with (
            running_server(create_app(settings, app)) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as c,
        ):
            path = f"/v1/queues/{q}/jobs/j/logs"
            assert (await c.get(path, headers=bearer("meta"))).status_code == 403
            assert (await c.get(path)).status_code == 401
            r = await c.get(path, headers=bearer("reader"))
            assert r.status_code == 200
            assert [ln["message"] for ln in r.json()["lines"]] == ["secret detail"]
    finally:
        await app.close()


async def test_job_page_shows_the_log_to_readers_only(
    serve: Callable[..., contextlib.AbstractAsyncContextManager[Served]],
) -> None:
    settings = ServerSettings(heartbeat_seconds=0.5, rate_limit_per_second=0).with_tokens(
        token_spec("peek:meta:srv-*,look:read:srv-*")
    )
    async with serve(settings) as s, httpx.AsyncClient(base_url=s.url, timeout=30) as browser:
        browser.headers["origin"] = s.url
        await _log_and_finish(s.app, s.queue, "paged", ["step <one>", "step two"])
        for token, sees in (("peek", False), ("look", True)):
            await browser.get("/ui/login")
            form = {"token": secret(token), "csrf": browser.cookies["streamq_csrf"], "next": "/ui/"}
            assert (await browser.post("/ui/login", data=form)).status_code in (200, 303)
            page = await browser.get(f"/ui/queues/{s.queue}/jobs/paged")
            assert page.status_code == 200
            assert ('id="job-log"' in page.text) is sees
            assert ("step &lt;one&gt;" in page.text) is sees  # escaped, never markup
            assert ("n=1" in page.text) is sees
