"""Scopes per queue (issue 11, finding 2): every operation that names a queue, with a token
of each kind limited to ``scq-*``, on a queue inside and a queue outside the pattern. Also:
``meta`` reads withhold payloads, results and errors; the queue list shows only what a token
may see; /metrics needs a scope over every queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from server_support import bearer, register_tasks, sse_messages, token_spec

from server import ServerSettings, create_app, running_server
from server.auth import IMPLIED
from streamq import App

KINDS = ("meta", "read", "write", "admin")
# (method, path under /v1/queues/{queue}, scope, meta suffices, body)
OPERATIONS: list[tuple[str, str, str, bool, Any]] = [
    ("POST", "/jobs", "write", False, "job"),
    ("POST", "/jobs:batch", "write", False, "batch"),
    ("GET", "/jobs/{job}", "read", True, None),
    ("DELETE", "/jobs/{job}", "write", False, None),
    ("GET", "/jobs/{job}/events", "read", True, None),
    ("GET", "/events", "read", True, None),
    ("GET", "", "read", True, None),
    ("POST", "/pause", "admin", False, None),
    ("POST", "/resume", "admin", False, None),
    ("GET", "/dead-letters", "admin", False, None),
    ("POST", "/dead-letters/1-0/replay", "admin", False, None),
    ("POST", "/dead-letters:replay", "admin", False, None),
    ("DELETE", "/dead-letters/1-0", "admin", False, None),
    ("DELETE", "/dead-letters", "admin", False, None),
]


class Scoped:
    def __init__(self, client: httpx.AsyncClient, app: App, inside: str, outside: str) -> None:
        self.client, self.app, self.inside, self.outside = client, app, inside, outside


@pytest.fixture
async def scoped(valkey_url: str, uniq: Callable[[str], str]) -> AsyncIterator[Scoped]:
    inside, outside = uniq("scq"), uniq("out")
    spec = ",".join(f"{kind}:{kind}:scq-*" for kind in KINDS) + ",everything:read"
    settings = ServerSettings(rate_limit_per_second=0, heartbeat_seconds=0.5).with_tokens(
        token_spec(spec)
    )
    app = App("scopes", redis_url=valkey_url)
    register_tasks(app, inside, f"{inside}-x")

    # The same job names on the outside queue, so a refusal can only be the scope's doing.
    @app.task("greet-out", queue=outside, public=True)
    async def greet_out(ctx: Any, req: dict[str, Any]) -> None:
        return None

    try:
        async with (
            running_server(create_app(settings, app)) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            yield Scoped(client, app, inside, outside)
    finally:
        await app.close()


def _allowed(kind: str, scope: str, meta_ok: bool) -> bool:
    return scope in IMPLIED[kind] or (meta_ok and "meta" in IMPLIED[kind])


async def _status(s: Scoped, method: str, path: str, body: Any, token: str) -> int:
    headers = bearer(token)
    if path.endswith("/events"):
        async with s.client.stream(method, path, headers=headers) as response:
            return response.status_code
    response = await s.client.request(method, path, json=body, headers=headers)
    return response.status_code


async def test_every_operation_checks_the_queue_against_the_token(scoped: Scoped) -> None:
    s = scoped
    names = {s.inside: "greet", s.outside: "greet-out"}
    for queue in (s.inside, s.outside):
        await s.app.enqueue(names[queue], {"who": "j"}, id="job-0", queue=queue)
    checked = 0
    for kind in KINDS:
        for method, suffix, scope, meta_ok, body_kind in OPERATIONS:
            for queue, in_scope in ((s.inside, True), (s.outside, False)):
                job = {"name": names[queue], "payload": {"who": "m"}}
                body = {"job": job, "batch": {"jobs": [job]}}.get(body_kind or "")
                path = f"/v1/queues/{queue}{suffix}".replace("{job}", "job-0")
                status = await _status(s, method, path, body, kind)
                if in_scope and _allowed(kind, scope, meta_ok):
                    # Past the scope check: success, or a verdict about the object itself.
                    assert status in (200, 202, 404, 409), (kind, method, path, status)
                else:
                    assert status == 403, (kind, method, path, status)
                checked += 1
    assert checked == len(KINDS) * len(OPERATIONS) * 2


async def test_meta_reads_withhold_payload_result_and_error(
    scoped: Scoped, run_worker: Callable[..., Any]
) -> None:
    s = scoped
    await s.app.enqueue(
        "steps", {"steps": 1, "fail": True}, id="dies", queue=s.inside, tags=["wallet:W9"]
    )
    async with run_worker(s.app, concurrency=1):
        await s.app.handle(s.inside, "dies").wait(10)
    path = f"/v1/queues/{s.inside}/jobs/dies"
    full = (await s.client.get(path, headers=bearer("read"))).json()
    assert full["payload"] == {"steps": 1, "fail": True} and "asked to fail" in full["error"]
    assert full["tags"] == ["wallet:W9"]
    meta = (await s.client.get(path, headers=bearer("meta"))).json()
    assert meta["state"] == "dead" and meta["payload"] is None and meta["error"] is None
    assert meta["tags"] == []  # tags may carry payload fields

    async def events(token: str) -> list[Any]:
        async with s.client.stream("GET", f"{path}/events", headers=bearer(token)) as r:
            return [m.json() async for m in sse_messages(r) if m.comment is None]

    read_events, meta_events = await events("read"), await events("meta")
    assert [e["type"] for e in meta_events] == [e["type"] for e in read_events]
    assert any("error" in e for e in read_events)
    assert not any("error" in e for e in meta_events)


async def test_the_queue_list_and_metrics_follow_the_scopes(scoped: Scoped) -> None:
    s = scoped
    listed = (await s.client.get("/v1/queues", headers=bearer("read"))).json()["queues"]
    names = {q["name"] for q in listed}
    assert s.inside in names and s.outside not in names
    everything = (await s.client.get("/v1/queues", headers=bearer("everything"))).json()
    assert s.outside in {q["name"] for q in everything["queues"]}
    # /metrics shows every queue: a scope over some queues is not enough.
    assert (await s.client.get("/metrics", headers=bearer("read"))).status_code == 403
    assert (await s.client.get("/metrics", headers=bearer("everything"))).status_code == 200
