"""Authentication and scopes, endpoint by endpoint: no token -> 401, a token without the
scope -> 403, the right scope -> the endpoint works. Plus token parsing and the loopback rule."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from server_support import JSON, Served, bearer, secret, token_spec

from server import ServerSettings, SettingsError
from server.app import OPERATIONS
from server.main import check_bind
from server.settings import parse_tokens

TOKENS = token_spec("reader:read,writer:write,admin:admin,rw:read+write")

# (method, path template, scope, body); {q} is the test queue, {dl} a dead letter id.
CASES: list[tuple[str, str, str | None, Any]] = [
    ("POST", "/v1/queues/{q}/jobs", "write", {"name": "greet", "payload": {"who": "a"}}),
    (
        "POST",
        "/v1/queues/{q}/jobs:batch",
        "write",
        {"jobs": [{"name": "greet", "payload": {"who": "b"}}]},
    ),
    ("GET", "/v1/queues/{q}/jobs/job-1", "read", None),
    ("DELETE", "/v1/queues/{q}/jobs/job-2", "write", None),
    ("GET", "/v1/queues/{q}/jobs/job-3/events", "read", None),
    ("GET", "/v1/queues/{q}/events", "read", None),
    ("GET", "/v1/queues", "read", None),
    ("GET", "/v1/queues/{q}", "read", None),
    ("POST", "/v1/queues/{q}/pause", "admin", None),
    ("POST", "/v1/queues/{q}/resume", "admin", None),
    # Before the dead-letter rows, whose replay-all would make dead-2 queued again.
    ("POST", "/v1/queues/{q}/jobs/dead-2/retry", "admin", None),
    ("GET", "/v1/queues/{q}/dead-letters", "admin", None),
    ("POST", "/v1/queues/{q}/dead-letters/{dl}/replay", "admin", None),
    ("DELETE", "/v1/queues/{q}/dead-letters/{dl}", "admin", None),
    ("POST", "/v1/queues/{q}/dead-letters:replay", "admin", None),
    ("DELETE", "/v1/queues/{q}/dead-letters", "admin", None),
    ("GET", "/metrics", "read", None),
    ("GET", "/healthz", None, None),
    ("GET", "/readyz", None, None),
    ("GET", "/openapi.json", None, None),
    ("GET", "/docs", None, None),
    ("GET", "/v1/schedules", "read", None),
    ("POST", "/v1/schedules/{q}/hourly/run", "admin", None),
    ("GET", "/v1/workers", "read", None),
    ("GET", "/v1/series", "read", None),
    ("GET", "/v1/queues/{q}/jobs", "read", None),
    ("GET", "/v1/jobs", "read", None),
    ("GET", "/v1/jobs/job-1", "read", None),
    ("GET", "/v1/queues/{q}/jobs/job-1/logs", "read", None),
    ("POST", "/v1/queues/{q}/jobs/later-1/priority", "admin", {"priority": "high"}),
    ("POST", "/v1/queues/{q}/jobs/later-1/promote", "admin", None),
    ("POST", "/v1/queues/{q}/jobs/done-1/remove", "admin", None),
    ("POST", "/v1/queues/{q}/jobs:cancel", "admin", {"ids": ["job-3"]}),
    ("POST", "/v1/queues/{q}/jobs:retry", "admin", {"ids": ["job-1"]}),
    ("POST", "/v1/queues/{q}/jobs:promote", "admin", {"ids": ["job-1"]}),
    ("POST", "/v1/queues/{q}/jobs:remove", "admin", {"ids": ["job-1"]}),
    ("POST", "/v1/queues/{q}:clean", "admin", {"older_than": 3600}),
    ("POST", "/v1/queues/{q}:drain", "admin", None),
    ("DELETE", "/v1/queues/{q}?force=true", "admin", None),  # last: it deletes the queue
]
# A token that lacks the scope (admin implies everything, so it is never "wrong").
WRONG = {"read": "writer", "write": "reader", "admin": "rw"}
RIGHT = {"read": "reader", "write": "writer", "admin": "admin"}


def _template(path: str) -> str:
    for concrete, placeholder in (
        ("{q}", "{queue}"),
        ("{dl}", "{id}"),
        ("job-1", "{id}"),
        ("job-2", "{id}"),
        ("job-3", "{id}"),
        ("hourly", "{id}"),
        ("dead-2", "{id}"),
        ("later-1", "{id}"),
        ("done-1", "{id}"),
        ("?force=true", ""),
    ):
        path = path.replace(concrete, placeholder)
    return path


def test_the_table_covers_every_endpoint_with_its_scope() -> None:
    table = {(method, _template(path)): scope for method, path, scope, _ in CASES}
    assert table == {(op.method, op.path): op.scope for op in OPERATIONS}


async def _fixtures(s: Served, run_worker: Callable[..., Any]) -> dict[str, str]:
    """Jobs and dead letters for the success calls (one per call that consumes one)."""
    app = s.app
    for i in range(3):
        await app.enqueue("steps", {"steps": 0, "fail": True}, id=f"dead-{i}", queue=s.queue)
    await app.enqueue("greet", {"who": "done"}, id="done-1", queue=s.queue)
    async with run_worker(app, concurrency=2):
        for job in ("dead-0", "dead-1", "dead-2", "done-1"):
            await app.handle(s.queue, job).wait(10)
    await app.enqueue("greet", {"who": "later"}, id="later-1", queue=s.queue, delay=3600)
    app.schedule("greet", {"who": "cron"}, every=3600, queue=s.queue, id="hourly")
    for job in ("job-1", "job-2", "job-3"):  # after the worker: they stay queued
        await app.enqueue("greet", {"who": job}, id=job, queue=s.queue)
    letters = {d.job: d for d in await app.dead_letters(s.queue)}
    assert set(letters) == {"dead-0", "dead-1", "dead-2"}
    return {"dl-replay": letters["dead-0"].id, "dl-purge": letters["dead-1"].id}


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: Any, token: str | None
) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if path.endswith("/events"):
        async with client.stream(method, path, headers=headers) as response:
            return response.status_code
    response = await client.request(method, path, json=body, headers=headers)
    return response.status_code


async def test_every_endpoint_401_403_and_ok(
    serve: Callable[..., Any], run_worker: Callable[..., Any]
) -> None:
    # Every route is called with a wrong token from one address: more than the failed-auth
    # throttle lets through (tested on its own in test_server_quotas).
    settings = ServerSettings(
        rate_limit_per_second=0, heartbeat_seconds=0.5, failed_auth_burst=1000
    ).with_tokens(TOKENS)
    async with serve(settings) as s:
        dead = await _fixtures(s, run_worker)
        client = s.client
        for method, template, scope, body in CASES:
            dl = dead["dl-replay"] if "replay" in template else dead["dl-purge"]
            path = template.replace("{q}", s.queue).replace("{dl}", dl)
            if scope is None:
                assert await _call(client, method, path, body, None) == 200, path
                continue
            anonymous = await client.request(method, path, json=body)
            assert anonymous.status_code == 401, path
            assert anonymous.json()["error"]["code"] == "unauthorized"
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            bogus = await client.request(
                method, path, json=body, headers={"Authorization": "Bearer nope"}
            )
            assert bogus.status_code == 401 and bogus.json()["error"]["code"] == "invalid_token"
            basic = await client.request(
                method, path, json=body, headers={"Authorization": "Basic cmVhZGVy"}
            )
            assert basic.status_code == 401, path
            wrong = await client.request(method, path, json=body, headers=bearer(WRONG[scope]))
            assert wrong.status_code == 403, path
            assert wrong.json()["error"]["code"] == "insufficient_scope"
            status = await _call(client, method, path, body, secret(RIGHT[scope]))
            assert status in (200, 202, 204), (path, status)
        # admin implies read and write
        assert await _call(client, "GET", "/v1/queues", None, secret("admin")) == 200
        r = await client.post(
            f"/v1/queues/{s.queue}/jobs",
            json={"name": "greet", "payload": {"who": "z"}},
            headers=bearer("admin"),
        )
        assert r.status_code == 202


async def test_without_tokens_only_loopback_clients_are_served(served: Served) -> None:
    # Real loopback client: served (and every scope granted).
    r = await served.client.post(f"/v1/queues/{served.queue}/pause", headers=JSON)
    assert r.status_code == 200
    # A client from elsewhere (seen through the ASGI scope) is refused.
    from server.context import server_state

    transport = httpx.ASGITransport(app=_asgi_of(served), client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as remote:
        r = await remote.get("/v1/queues")
        assert r.status_code == 403 and r.json()["error"]["code"] == "auth_required"
        assert (await remote.get("/healthz")).status_code == 200
    assert server_state is not None


def _asgi_of(served: Served) -> Any:
    from server import create_app

    return create_app(ServerSettings(), served.app)


def test_refuses_to_bind_beyond_loopback_without_tokens() -> None:
    with pytest.raises(SettingsError, match=r"refusing to listen on 0\.0\.0\.0"):
        check_bind("0.0.0.0", ServerSettings())
    with pytest.raises(SettingsError):
        check_bind("192.168.1.4", ServerSettings())
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, ServerSettings())
    check_bind("0.0.0.0", ServerSettings().with_tokens("t:read"))


def test_serve_refuses_before_listening() -> None:
    from server import serve

    with pytest.raises(SettingsError, match="STREAMQ_API_TOKENS"):
        serve("tests.nowhere:app", host="0.0.0.0", port=1, settings=ServerSettings())


def test_token_parsing_hashes_and_scopes(tmp_path: Any) -> None:
    tokens = parse_tokens("sekret-one:read+write, def:admin\n# comment\nghi:read")
    assert [sorted(t.scopes) for t in tokens] == [["read", "write"], ["admin"], ["read"]]
    assert tokens[0].digest == hashlib.sha256(b"sekret-one").hexdigest()
    assert "sekret" not in repr(tokens[0])
    for bad in ("abc", "abc:", "abc:root", ":read", "abc:read+sudo"):
        with pytest.raises(SettingsError):
            parse_tokens(bad)
    file = tmp_path / "tokens"
    file.write_text("filetok:admin  # ops\n")
    settings = ServerSettings.from_env(
        {"STREAMQ_API_TOKENS": "envtok:read", "STREAMQ_API_TOKENS_FILE": str(file)}
    )
    assert [sorted(t.scopes) for t in settings.tokens] == [["read"], ["admin"]]
    with pytest.raises(SettingsError, match="cannot read"):
        ServerSettings.from_env({"STREAMQ_API_TOKENS_FILE": str(tmp_path / "missing")})
    with pytest.raises(SettingsError, match="STREAMQ_PORT"):
        ServerSettings.from_env({"STREAMQ_PORT": "eighty"})
    env = ServerSettings.from_env(
        {"STREAMQ_SSE_HEARTBEAT": "2.5", "STREAMQ_RATE_LIMIT": "50/s", "STREAMQ_PORT": "9000"}
    )
    assert (env.heartbeat_seconds, env.rate_limit_per_second, env.port) == (2.5, 50.0, 9000)
