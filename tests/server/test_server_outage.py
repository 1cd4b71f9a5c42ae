"""Redis frozen (SIGSTOP) or gone: every Redis-backed route answers 503 within 2 s, /readyz
says not ready, /metrics says streamq_redis_up 0, an open SSE stream survives and resumes,
and a task group's Redis failure is a 503, not a 500 (issue 11, findings 3 and 4)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from outage_support import PrivateValkey, private_valkey
from server_support import register_tasks, sse_messages
from starlette.requests import Request
from starlette.responses import Response

from server import ApiError, Call, Operation, ServerSettings, create_app, json_response
from server import running_server as run_http
from streamq import App

LIMIT = 2.0


async def _both_jobs(request: Request, call: Call) -> Response:
    """An application route reading through a task group (as processors' job lookups do)."""
    found: list[str] = []

    async def look(queue: str) -> None:
        if await call.app.job(queue, request.path_params["id"]) is not None:
            found.append(queue)

    async with anyio.create_task_group() as tg:
        for q in call.app.queues_of_tasks():
            tg.start_soon(look, q)
    return json_response({"found": found})


async def _group_of_client_errors(request: Request, call: Call) -> Response:
    async with anyio.create_task_group() as tg:

        async def fail() -> None:
            raise ApiError(404, "job_not_found", "nothing here")

        tg.start_soon(fail)
    return json_response({})


EXTRA = (
    Operation("GET", "/app/jobs/{id}", "app_job", "test", _both_jobs),
    Operation("GET", "/app/missing", "app_missing", "test", _group_of_client_errors),
)


class Stack:
    def __init__(self, valkey: PrivateValkey, app: App, url: str, queue: str, other: str):
        self.valkey, self.app, self.url, self.queue, self.other = valkey, app, url, queue, other


@pytest.fixture
async def stack(tmp_path: Path, settings: ServerSettings) -> AsyncIterator[Stack]:
    with private_valkey(tmp_path / "valkey") as valkey:
        app = App("outage", redis_url=valkey.url)
        register_tasks(app, "out-q", "out-other")
        asgi = create_app(settings, app, extra_operations=EXTRA)
        try:
            async with run_http(asgi) as url:
                yield Stack(valkey, app, url, "out-q", "out-other")
        finally:
            valkey.thaw()
            await app.close()


def _routes(q: str, other: str, n: int) -> list[tuple[str, str, Any]]:
    """Every route that needs Redis to answer (``n`` keeps job ids apart between rounds)."""
    return [
        ("POST", f"/v1/queues/{q}/jobs", {"name": "greet", "payload": {"who": "x"}, "id": f"o{n}"}),
        ("POST", f"/v1/queues/{q}/jobs:batch", {"jobs": [{"name": "greet", "payload": {"who": "y"}}]}),
        ("GET", f"/v1/queues/{q}/jobs/seed", None),
        ("DELETE", f"/v1/queues/{q}/jobs/seed", None),
        ("GET", f"/v1/queues/{q}/jobs/seed/events", None),
        ("GET", f"/v1/queues/{other}/events", None),  # no feed yet: opening it reads Redis
        ("GET", "/v1/queues", None),
        ("GET", f"/v1/queues/{q}", None),
        ("POST", f"/v1/queues/{q}/pause", None),
        ("POST", f"/v1/queues/{q}/resume", None),
        ("GET", f"/v1/queues/{q}/dead-letters", None),
        ("POST", f"/v1/queues/{q}/dead-letters/1-0/replay", None),
        ("POST", f"/v1/queues/{q}/dead-letters:replay", None),
        ("DELETE", f"/v1/queues/{q}/dead-letters/1-0", None),
        ("DELETE", f"/v1/queues/{q}/dead-letters", None),
        ("GET", "/app/jobs/seed", None),
    ]  # fmt: skip


async def _timed(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> tuple[int, float, str]:
    started = time.perf_counter()
    headers = {"content-type": "application/json"} if method == "POST" else {}
    response = await client.request(method, path, json=body, headers=headers)
    return response.status_code, time.perf_counter() - started, response.text


async def _all_unavailable(s: Stack, n: int) -> None:
    routes = _routes(s.queue, s.other, n)
    async with httpx.AsyncClient(base_url=s.url, timeout=20) as client:
        answers = await asyncio.gather(*(_timed(client, m, p, b) for m, p, b in routes))
        for (method, path, _), (status, elapsed, text) in zip(routes, answers, strict=True):
            assert status == 503, (method, path, status, text)
            assert "broker_unavailable" in text, (method, path, text)
            assert elapsed < LIMIT, (method, path, elapsed)
        started = time.perf_counter()
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and time.perf_counter() - started < LIMIT
        started = time.perf_counter()
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200 and time.perf_counter() - started < LIMIT
        assert "streamq_redis_up 0.0" in metrics.text


async def test_a_frozen_redis_answers_503_within_2s_and_streams_resume(stack: Stack) -> None:
    s = stack
    await s.app.enqueue("greet", {"who": "seed"}, id="seed", queue=s.queue)
    async with (
        httpx.AsyncClient(base_url=s.url, timeout=30) as watcher,
        watcher.stream("GET", f"/v1/queues/{s.queue}/events") as stream,
    ):
        messages = sse_messages(stream)
        first = await anext(messages)
        assert first.comment == "connected"
        s.valkey.freeze()
        await _all_unavailable(s, 1)
        # The open stream is alive: it keeps sending heartbeats while Redis is frozen.
        beat = await asyncio.wait_for(anext(messages), 5)
        assert beat.comment == "keep-alive"
        s.valkey.thaw()
        async with httpx.AsyncClient(base_url=s.url, timeout=10) as client:
            await asyncio.sleep(1.1)  # past the readiness cache
            assert (await client.get("/readyz")).status_code == 200
            r = await client.post(
                f"/v1/queues/{s.queue}/jobs",
                json={"name": "greet", "payload": {"who": "z"}, "id": "after"},
            )
            assert r.status_code == 202, r.text
            assert (await client.get(f"/v1/queues/{s.queue}/jobs/after")).status_code == 200
            assert (await client.get("/app/jobs/after")).json() == {"found": [s.queue]}
        # ... and resumes: the job enqueued after the thaw arrives on the same connection.
        async with asyncio.timeout(10):
            async for message in messages:
                if message.comment is None and message.json()["job"] == "after":
                    break


async def test_a_redis_that_is_gone_answers_503_within_2s(stack: Stack) -> None:
    await stack.app.enqueue("greet", {"who": "seed"}, id="seed", queue=stack.queue)
    stack.valkey.stop()
    await _all_unavailable(stack, 2)


async def test_a_task_group_failing_on_redis_is_a_503_on_a_kept_connection(
    stack: Stack,
) -> None:
    stack.valkey.stop()
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        r = await client.get("/app/jobs/seed")
        assert r.status_code == 503 and r.json()["error"]["code"] == "broker_unavailable"
        # A client error inside a group keeps its status.
        r = await client.get("/app/missing")
        assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
        assert (await client.get("/healthz")).status_code == 200
    # On one raw keep-alive connection: the 503 leaves it open for the next request.
    netloc = stack.url.removeprefix("http://")
    host, _, port = netloc.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for path, status in (("/app/jobs/seed", b"503"), ("/healthz", b"200")):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\n\r\n".encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.split(b" ")[1] == status, head
            assert b"connection: close" not in head.lower()
            length = next(
                int(line.split(b":")[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            await reader.readexactly(length)
    finally:
        writer.close()
