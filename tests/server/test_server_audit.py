"""The audit trail and the access log (issue 11, finding 8): every write and admin call,
allowed or refused, is logged with the token's name (never the token), the queue, the job
ids and the outcome; the access log names the caller."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from server_support import bearer, register_tasks, secret, token_spec

import streamq
from server import ServerSettings, create_app, running_server
from streamq import App


def _audits(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.audit for r in caplog.records if r.name == "server.audit"]  # type: ignore[attr-defined]


async def test_writes_and_admin_calls_are_audited_by_name(
    valkey_url: str, uniq: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    queue = uniq("audit")
    app = App("audit", redis_url=valkey_url)
    register_tasks(app, queue, uniq("audit-other"))
    settings = ServerSettings(rate_limit_per_second=0).with_tokens(
        token_spec("writer:write+read,ops:admin")
    )
    try:
        async with (
            running_server(create_app(settings, app)) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as c,
        ):
            base = f"/v1/queues/{queue}"
            body = {"name": "greet", "payload": {"who": "a"}, "id": "audited-1"}
            assert (await c.post(f"{base}/jobs", json=body, headers=bearer("writer"))).is_success
            batch = {"jobs": [{"name": "greet", "payload": {"who": w}, "id": w} for w in "bc"]}
            r = await c.post(f"{base}/jobs:batch", json=batch, headers=bearer("writer"))
            assert r.status_code == 202
            r = await c.delete(f"{base}/jobs/audited-1", headers=bearer("writer"))
            assert r.status_code == 200
            r = await c.post(f"{base}/pause", headers=bearer("writer"))  # refused: not admin
            assert r.status_code == 403
            assert (await c.post(f"{base}/pause", headers=bearer("ops"))).status_code == 200
            r = await c.post(
                f"{base}/jobs", json={"name": "nope", "payload": {}}, headers=bearer("writer")
            )
            assert r.status_code == 400
            # Reads are not audited.
            assert (await c.get(f"{base}/jobs/b", headers=bearer("writer"))).status_code == 200
    finally:
        await app.close()

    audits = _audits(caplog)
    summary = [(a["action"], a["caller"], a["jobs"], a["status"], a["outcome"]) for a in audits]
    assert summary == [
        ("enqueue_job", "writer", ["audited-1"], 202, "ok"),
        ("enqueue_batch", "writer", ["b", "c"], 202, "ok"),
        ("cancel_job", "writer", ["audited-1"], 200, "ok"),
        ("pause_queue", "writer", [], 403, "insufficient_scope"),
        ("pause_queue", "ops", [], 200, "ok"),
        ("enqueue_job", "writer", [], 400, "unknown_job"),
    ]
    assert all(a["queue"] == queue for a in audits)
    # The access log names the caller; no log line holds a secret.
    access = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    assert any(f"POST {base}/pause" in line and "caller=ops" in line for line in access)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert secret("writer") not in text and secret("ops") not in text


def test_a_failed_call_is_audited_with_the_status_it_is_answered_with() -> None:
    from server import ApiError
    from server.audit import outcome_of

    assert outcome_of(ApiError(403, "insufficient_scope", "no")) == (403, "insufficient_scope")
    down = streamq.BrokerUnavailable("down")
    assert outcome_of(down) == (503, "broker_unavailable")
    assert outcome_of(ExceptionGroup("g", [ValueError(), down])) == (503, "broker_unavailable")
    assert outcome_of(streamq.QueueFull("oom")) == (503, "queue_full")
    assert outcome_of(RuntimeError("bug")) == (500, "error")
