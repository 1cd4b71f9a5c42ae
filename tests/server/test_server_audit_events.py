"""Audit records in the queue's events stream (issue 11, "in the log and the queue's events
stream"): every write and admin call on a queue of the server's tasks appends an ``audit``
event naming the token (never the secret), the outcome and the job ids, under no job (so a
job's followers, who filter on it, do not see it); ``streamq tail`` knows the type. On both
servers."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import httpx
from server_support import bearer, register_tasks, secret, token_spec

from server import ServerSettings, create_app, running_server
from streamq import App, Event, _keys
from streamq.cli._tail import line, parse_types


async def audit_events(app: App, queue: str, count: int, timeout: float = 5.0) -> list[Event]:
    """The queue's ``audit`` events once ``count`` are there (they are written in the
    background of the answer), read with blocking XREADs."""
    found: list[Event] = []
    after = "0-0"
    with anyio.fail_after(timeout):
        while len(found) < count:
            for ev in await app.read_events(queue, after=after, count=100, block_ms=500):
                after = ev.id
                if ev.type == "audit":
                    found.append(ev)
    return found


async def test_write_and_admin_calls_append_audit_events(
    app_factory: Callable[..., App], uniq: Callable[[str], str]
) -> None:
    queue, other = uniq("audq"), uniq("audq-other")
    app = app_factory("audit-events")
    register_tasks(app, queue, other)
    settings = ServerSettings(rate_limit_per_second=0, heartbeat_seconds=0.5).with_tokens(
        token_spec("writer:write:audq-*+read:audq-*,ops:admin")
    )
    async with (
        running_server(create_app(settings, app)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as c,
    ):
        base = f"/v1/queues/{queue}"
        body = {"name": "greet", "payload": {"who": "a"}, "id": "aud-1"}
        r = await c.post(f"{base}/jobs", json=body, headers=bearer("writer"))
        assert r.status_code == 202
        r = await c.post(f"{base}/pause", headers=bearer("writer"))
        assert r.status_code == 403
        # A made-up queue: refused, and no key is created for it.
        r = await c.post("/v1/queues/nope-queue/jobs", json=body, headers=bearer("writer"))
        assert r.status_code in (403, 404)
        events = await audit_events(app, queue, 2)
        assert await app.redis.exists(_keys.events("nope-queue")) == 0
    assert [(e.name, e.job) for e in events] == [("enqueue_job", ""), ("pause_queue", "")]
    assert events[0].message == "caller=writer status=202 outcome=ok jobs=aud-1"
    assert events[1].message == "caller=writer status=403 outcome=insufficient_scope jobs=-"
    assert all(secret("writer") not in (e.message or "") for e in events)
    assert parse_types(["audit"]) == {"audit"}
    assert "enqueue_job" in line(events[0], colour=False)
    assert abs(events[0].at - time.time()) < 60
