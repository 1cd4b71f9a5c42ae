"""Quotas and throttles (issue 11, findings 7 and 8): enqueues per second and bytes per minute
per token (429 with Retry-After), the furthest delay (422), the largest batch (413), wrong
tokens per address, /metrics and /readyz per client, and no token shorter than 32 characters."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from server_support import bearer, register_tasks, token_spec

from server import ServerSettings, SettingsError, create_app, running_server
from streamq import App


class Quota:
    def __init__(self, client: httpx.AsyncClient, queue: str) -> None:
        self.client, self.queue = client, queue
        self.jobs = f"/v1/queues/{queue}/jobs"

    async def post(self, token: str, body: Any, path: str | None = None) -> httpx.Response:
        return await self.client.post(path or self.jobs, json=body, headers=bearer(token))


Start = Callable[..., contextlib.AbstractAsyncContextManager[Quota]]
TOKENS = token_spec("a:write,b:write,c:write,d:write,r:read")


@pytest.fixture
def start(valkey_url: str, uniq: Callable[[str], str]) -> Start:
    @contextlib.asynccontextmanager
    async def run(**options: Any) -> AsyncIterator[Quota]:
        settings = ServerSettings(rate_limit_per_second=0, **options).with_tokens(TOKENS)
        app = App("quota", redis_url=valkey_url)
        queue = uniq("quota")
        register_tasks(app, queue, uniq("quota-other"))
        try:
            async with (
                running_server(create_app(settings, app)) as url,
                httpx.AsyncClient(base_url=url, timeout=10) as client,
            ):
                yield Quota(client, queue)
        finally:
            await app.close()

    return run


def job(who: str = "q", **extra: Any) -> dict[str, Any]:
    return {"name": "greet", "payload": {"who": who}, **extra}


def assert_429(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1


async def test_enqueues_per_second_per_token(start: Start) -> None:
    async with start(enqueue_per_second=0.2, enqueue_burst=5) as s:
        r = await s.post("a", {"jobs": [job(str(i)) for i in range(5)]}, s.jobs + ":batch")
        assert r.status_code == 202
        assert_429(await s.post("a", job("one more")))
        assert_429(await s.post("a", {"jobs": [job("x")]}, s.jobs + ":batch"))
        assert (await s.post("b", job("another token"))).status_code == 202


async def test_bytes_per_minute_per_token(start: Start) -> None:
    async with start(enqueue_bytes_per_minute=4000) as s:
        assert (await s.post("c", job("x" * 2500))).status_code == 202
        assert_429(await s.post("c", job("y" * 2500)))
        assert (await s.post("d", job("z" * 2500))).status_code == 202


async def test_the_furthest_delay_and_the_largest_batch(start: Start) -> None:
    async with start(max_delay_seconds=3600, max_batch=3) as s:
        r = await s.post("a", job(delay=3601))
        assert r.status_code == 422 and r.json()["error"]["code"] == "delay_too_far"
        assert r.json()["error"]["path"] == "$.delay"
        r = await s.post("a", {"jobs": [job(), job(delay=366 * 86400)]}, s.jobs + ":batch")
        assert r.status_code == 422 and r.json()["error"]["path"] == "$.jobs[1].delay"
        assert (await s.post("a", job(delay=3600))).status_code == 202
        r = await s.post("a", {"jobs": [job(str(i)) for i in range(4)]}, s.jobs + ":batch")
        assert r.status_code == 413 and r.json()["error"]["code"] == "batch_too_large"


async def test_wrong_tokens_are_throttled_per_address(start: Start) -> None:
    async with start(failed_auth_burst=3, failed_auth_per_minute=1) as s:
        wrong = {"Authorization": "Bearer " + "guess" * 8}
        for _ in range(3):
            assert (await s.client.get("/v1/queues", headers=wrong)).status_code == 401
        r = await s.client.get("/v1/queues", headers=wrong)
        assert_429(r)
        # The address is locked out, right token or not, until the bucket refills.
        assert_429(await s.client.get("/v1/queues", headers=bearer("r")))
        assert (await s.client.get("/healthz")).status_code == 200


async def test_probes_are_limited_per_client(start: Start) -> None:
    async with start(probe_rate_per_second=0.5, probe_burst=2) as s:
        for _ in range(2):
            assert (await s.client.get("/readyz")).status_code == 200
        assert_429(await s.client.get("/readyz"))
        assert_429(await s.client.get("/metrics", headers=bearer("r")))
        assert (await s.client.get("/healthz")).status_code == 200


def test_short_tokens_are_refused_at_start() -> None:
    app = App("short")
    with pytest.raises(SettingsError, match="shorter than 32"):
        create_app(ServerSettings().with_tokens("weak=hunter2:admin"), app)
    create_app(ServerSettings().with_tokens("ok=" + "k" * 32 + ":admin"), app)
