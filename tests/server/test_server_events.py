"""Server-sent events over a real socket: order, resume with Last-Event-ID, heartbeats,
slow clients, the end of a job's stream."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import anyio
import httpx
from server_support import Served, bearer, collect_events, sse_messages, token_spec

from server import ServerSettings


async def test_job_stream_shows_every_step_in_order_and_resumes_exactly(
    served: Served, run_worker: Callable[..., Any]
) -> None:
    q = served.queue
    r = await served.client.post(
        f"/v1/queues/{q}/jobs", json={"name": "steps", "payload": {"steps": 3}, "id": "walk-1"}
    )
    assert r.status_code == 202
    path = r.json()["links"]["events"]
    assert path == f"/v1/queues/{q}/jobs/walk-1/events"

    async with anyio.create_task_group() as tg:
        full: list[Any] = []
        finished = anyio.Event()

        async def follow() -> None:
            full.extend(await collect_events(served.client, path))
            finished.set()

        tg.start_soon(follow)
        await anyio.sleep(0.2)  # connected before the job runs: later events arrive live
        async with run_worker(served.app, concurrency=2):
            with anyio.fail_after(20):
                await finished.wait()

    types = [m.event for m in full]
    assert types == ["queued", "active", "progress", "progress", "progress", "completed"]
    assert [m.json()["type"] for m in full] == types
    assert all(m.json()["job"] == "walk-1" for m in full)
    assert [m.json()["progress"] for m in full if m.event == "progress"] == [
        100 / 3,
        200 / 3,
        100.0,
    ]
    ids = [m.id for m in full]
    assert all(ids) and ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))

    # A client that leaves after the second event and comes back gets exactly the rest.
    first_two = await collect_events(served.client, path, stop_after=2)
    assert [m.id for m in first_two] == ids[:2]
    rest = await collect_events(served.client, path, headers={"Last-Event-ID": ids[1]})
    assert [m.id for m in rest] == ids[2:]
    assert [m.event for m in rest] == types[2:]
    # The query-parameter form, for EventSource's first connection.
    rest_q = await collect_events(served.client, f"{path}?last_event_id={ids[3]}")
    assert [m.id for m in rest_q] == ids[4:]


async def test_queue_stream_is_live_and_resumable(
    served: Served, run_worker: Callable[..., Any]
) -> None:
    q = served.queue
    path = f"/v1/queues/{q}/events"
    seen: list[Any] = []
    finished = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def follow() -> None:
            done: set[str] = set()

            def all_done(m: Any) -> bool:
                if m.event == "completed":
                    done.add(m.json()["job"])
                return len(done) == 5

            seen.extend(await collect_events(served.client, path, until=all_done))
            finished.set()

        tg.start_soon(follow)
        await anyio.sleep(0.3)
        for i in range(5):
            r = await served.client.post(
                f"/v1/queues/{q}/jobs", json={"name": "greet", "payload": {"who": f"w{i}"}}
            )
            assert r.status_code == 202
        with anyio.fail_after(20):
            async with run_worker(served.app, concurrency=5):
                await finished.wait()

    jobs = {m.json()["job"] for m in seen}
    assert len(jobs) == 5
    for job in jobs:
        assert [m.event for m in seen if m.json()["job"] == job] == [
            "queued",
            "active",
            "completed",
        ]
    # Everything after the 4th event, straight from the stream.
    # (The stream also holds the API's audit records, which SSE clients are not sent.)
    expected = [
        e
        for e in await served.app.read_events(q, after=seen[3].id, count=1000)
        if e.type != "audit"
    ]
    resumed = await collect_events(
        served.client,
        path,
        headers={"Last-Event-ID": seen[3].id},
        stop_after=len(expected),
    )
    assert [m.id for m in resumed] == [e.id for e in expected]
    assert [m.id for m in resumed] == [m.id for m in seen[4:]]


async def test_heartbeat_comments_keep_an_idle_stream_alive(served: Served) -> None:
    comments: list[str] = []
    with anyio.fail_after(10):
        async with served.client.stream("GET", f"/v1/queues/{served.queue}/events") as response:
            async for message in sse_messages(response):
                if message.comment is not None:
                    comments.append(message.comment)
                if comments.count("keep-alive") >= 2:
                    break
    assert comments[0] == "connected"
    assert comments.count("keep-alive") == 2


async def test_a_client_too_slow_for_its_buffer_still_gets_every_event_once(
    serve: Callable[..., Any], run_worker: Callable[..., Any]
) -> None:
    # A 3-event buffer overflows on the first batch: the stream must fall back to Redis.
    settings = ServerSettings(heartbeat_seconds=0.5, rate_limit_per_second=0, sse_client_buffer=3)
    async with serve(settings) as s:
        q = s.queue
        cursor = "0-0"
        got: list[Any] = []
        finished = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def follow() -> None:
                got.extend(
                    await collect_events(
                        s.client,
                        f"/v1/queues/{q}/events",
                        headers={"Last-Event-ID": cursor},
                        stop_after=60,
                    )
                )
                finished.set()

            tg.start_soon(follow)
            await anyio.sleep(0.2)
            batch = [{"name": "greet", "payload": {"who": str(i)}} for i in range(20)]
            r = await s.client.post(f"/v1/queues/{q}/jobs:batch", json={"jobs": batch})
            assert r.status_code == 202
            with anyio.fail_after(20):
                async with run_worker(s.app, concurrency=20):
                    await finished.wait()
        stored = [
            e for e in await s.app.read_events(q, after="0-0", count=1000) if e.type != "audit"
        ]
        assert len(stored) == 60
        assert [m.id for m in got] == [e.id for e in stored]


async def test_stream_of_a_finished_job_replays_and_ends(
    served: Served, run_worker: Callable[..., Any]
) -> None:
    q = served.queue
    r = await served.client.post(
        f"/v1/queues/{q}/jobs",
        json={"name": "steps", "payload": {"steps": 1, "fail": True}, "id": "doomed"},
    )
    assert r.status_code == 202
    async with run_worker(served.app, concurrency=1):
        job = await served.app.handle(q, "doomed").wait(10)
        assert job.state == "dead"
    with anyio.fail_after(10):
        events = await collect_events(served.client, f"/v1/queues/{q}/jobs/doomed/events")
    assert [m.event for m in events][-1] == "dead"
    assert events[0].event == "queued"
    assert "asked to fail" in (events[-1].json().get("error") or "")


async def test_stream_errors_are_plain_http_errors(served: Served) -> None:
    c = served.client
    r = await c.get(f"/v1/queues/{served.queue}/jobs/nope/events")
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
    r = await c.get("/v1/queues/no-such-queue/events")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_queue"
    r = await c.get(f"/v1/queues/{served.queue}/events", headers={"Last-Event-ID": "yesterday"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_entry_id"
    r = await c.get(f"/v1/queues/{served.queue}/jobs/bad%20id/events")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_job_id"


async def test_sse_connection_cap_per_token_and_release_on_disconnect(
    serve: Callable[..., Any],
) -> None:
    settings = ServerSettings(
        heartbeat_seconds=0.5, rate_limit_per_second=0, sse_max_per_token=2
    ).with_tokens(token_spec("reader:read,other:read"))
    reader = bearer("reader")
    async with serve(settings) as s:
        path = f"/v1/queues/{s.queue}/events"
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(2):
                response = await stack.enter_async_context(
                    s.client.stream("GET", path, headers=reader)
                )
                assert response.status_code == 200
            r = await s.client.get(path, headers=reader)
            assert r.status_code == 429
            assert r.json()["error"]["code"] == "too_many_streams"
            assert r.headers["retry-after"]
            # Another token has its own allowance.
            async with s.client.stream("GET", path, headers=bearer("other")) as response:
                assert response.status_code == 200
        # Both streams closed by the client: the slots come back.
        with anyio.fail_after(5):
            while True:
                async with s.client.stream("GET", path, headers=reader) as response:
                    if response.status_code == 200:
                        break
                await anyio.sleep(0.05)


async def test_shutdown_ends_open_streams(
    app_factory: Callable[..., Any], uniq: Callable[[str], str]
) -> None:
    from server_support import register_tasks

    from server import create_app, running_server

    app = app_factory()
    q = uniq("q")
    register_tasks(app, q, uniq("q"))
    asgi = create_app(ServerSettings(heartbeat_seconds=30), app)
    with anyio.fail_after(8):
        async with running_server(asgi) as url, httpx.AsyncClient(base_url=url) as client:
            async with client.stream("GET", f"/v1/queues/{q}/events") as response:
                assert response.status_code == 200
                lines = response.aiter_lines()
                assert (await lines.__anext__()).startswith("retry:")
                # running_server's exit must not wait the 30 s heartbeat nor the grace period


async def test_head_on_a_stream_answers_headers_only(served: Served) -> None:
    with anyio.fail_after(5):
        r = await served.client.head(f"/v1/queues/{served.queue}/events")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
