"""Without tokens (loopback only) a web page cannot drive the API (issue 11, finding 6): a
foreign Host (DNS rebinding) or Origin, a write that is not JSON (text/plain, a form), and a
request through a proxy are refused; the same requests done right are served."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from server_support import register_tasks

from server import ServerSettings, create_app, running_server
from streamq import App


class Site:
    def __init__(self, url: str, app: App, queue: str) -> None:
        self.url, self.app, self.queue = url, app, queue
        self.netloc = url.removeprefix("http://")
        self.port = self.netloc.rpartition(":")[2]


Start = Callable[..., contextlib.AbstractAsyncContextManager[Site]]


@pytest.fixture
def start(valkey_url: str, uniq: Callable[[str], str]) -> Start:
    @contextlib.asynccontextmanager
    async def run(**options: Any) -> AsyncIterator[Site]:
        settings = ServerSettings(rate_limit_per_second=0, stats_sample_seconds=0, **options)
        app = App("loop", redis_url=valkey_url)
        queue = uniq("loop")
        register_tasks(app, queue, uniq("loop-other"))
        try:
            async with running_server(create_app(settings, app)) as url:
                yield Site(url, app, queue)
        finally:
            await app.close()

    return run


JOB = b'{"name": "greet", "payload": {"who": "csrf"}, "id": "planted"}'


async def _nothing_enqueued(site: Site) -> None:
    assert await site.app.job(site.queue, "planted") is None


async def test_a_text_plain_post_from_a_rebound_name_is_refused(start: Start) -> None:
    async with start() as site, httpx.AsyncClient(base_url=site.url) as c:
        path = f"/v1/queues/{site.queue}/jobs"
        # What a page on evil.example sends after pointing its name at 127.0.0.1.
        r = await c.post(
            path,
            content=JOB,
            headers={
                "Host": f"evil.example:{site.port}",
                "Origin": f"http://evil.example:{site.port}",
                "Content-Type": "text/plain",
            },
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "invalid_host"
        # A simple (no-preflight) cross-site POST to the real address: not JSON, refused.
        r = await c.post(
            path,
            content=JOB,
            headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"
        r = await c.post(path, content=JOB, headers={"Content-Type": "text/plain"})
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
        await _nothing_enqueued(site)
        # JSON from this host (curl, a script, the dashboard) is served.
        r = await c.post(path, content=JOB, headers={"Content-Type": "application/json"})
        assert r.status_code == 202, r.text
        r = await c.get(
            f"/v1/queues/{site.queue}/jobs/planted", headers={"Host": f"localhost:{site.port}"}
        )
        assert r.status_code == 200


async def test_a_form_post_cannot_pause_a_queue(start: Start) -> None:
    async with start() as site, httpx.AsyncClient(base_url=site.url) as c:
        path = f"/v1/queues/{site.queue}/pause"
        r = await c.post(path, data={"x": "1"})  # application/x-www-form-urlencoded
        assert r.status_code == 415
        r = await c.post(path, files={"f": b"1"})  # multipart/form-data
        assert r.status_code == 415
        r = await c.post(path)  # no body, no type
        assert r.status_code == 415
        assert (await c.get(f"/v1/queues/{site.queue}")).json()["paused"] is False
        r = await c.post(path, headers={"Content-Type": "application/json"})
        assert r.status_code == 200 and r.json()["paused"] is True


async def test_a_rebound_name_cannot_read_either(start: Start) -> None:
    async with start() as site, httpx.AsyncClient(base_url=site.url) as c:
        r = await c.get("/v1/queues", headers={"Host": f"evil.example:{site.port}"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "invalid_host"
        r = await c.get("/v1/queues", headers={"Host": "127.0.0.1"})  # the wrong port
        assert r.status_code == 403
        assert (await c.get("/v1/queues")).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        ("Forwarded", "for=203.0.113.9"),
        ("X-Forwarded-For", "203.0.113.9"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
        ("X-Real-IP", "203.0.113.9"),
    ],
)
async def test_proxied_requests_are_refused_without_trusted_proxies(
    start: Start, header: tuple[str, str]
) -> None:
    async with start() as site, httpx.AsyncClient(base_url=site.url) as c:
        r = await c.get("/v1/queues", headers=dict([header]))
        assert r.status_code == 403 and r.json()["error"]["code"] == "proxied_request"
        r = await c.post(
            f"/v1/queues/{site.queue}/jobs",
            content=JOB,
            headers={"Content-Type": "application/json", header[0]: header[1]},
        )
        assert r.status_code == 403
        await _nothing_enqueued(site)


async def test_a_trusted_proxy_forwards_loopback_clients_only(start: Start) -> None:
    async with (
        start(trusted_proxies=("127.0.0.1",)) as site,
        httpx.AsyncClient(base_url=site.url) as c,
    ):
        r = await c.get("/v1/queues", headers={"X-Forwarded-For": "127.0.0.1"})
        assert r.status_code == 200
        r = await c.get("/v1/queues", headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "auth_required"


async def test_allowed_hosts_add_names(start: Start) -> None:
    async with (
        start(allowed_hosts=("queue.internal",)) as site,
        httpx.AsyncClient(base_url=site.url) as c,
    ):
        r = await c.get("/v1/queues", headers={"Host": f"queue.internal:{site.port}"})
        assert r.status_code == 200
