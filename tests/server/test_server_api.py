"""The REST job API against a real server: enqueue, dedup, validation, limits, reads,
cancel, queues, pause/resume and dead letters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from server_support import JSON, Served, bearer, token_spec

from server import ServerSettings


def jobs_path(s: Served, queue: str | None = None) -> str:
    return f"/v1/queues/{queue or s.queue}/jobs"


async def test_enqueue_then_dedup_then_read(served: Served) -> None:
    c = served.client
    body = {"name": "greet", "payload": {"who": "ada", "times": 2}, "id": "greet:ada"}
    first = await c.post(jobs_path(served), json=body)
    assert first.status_code == 202
    assert first.headers["location"] == f"/v1/queues/{served.queue}/jobs/greet:ada"
    assert first.json() == {
        "id": "greet:ada",
        "queue": served.queue,
        "state": "queued",
        "deduplicated": False,
        "links": {
            "self": f"/v1/queues/{served.queue}/jobs/greet:ada",
            "events": f"/v1/queues/{served.queue}/jobs/greet:ada/events",
        },
    }
    again = await c.post(jobs_path(served), json={**body, "payload": {"who": "other"}})
    assert again.status_code == 200
    assert again.json()["deduplicated"] is True
    job = (await c.get(f"{jobs_path(served)}/greet:ada")).json()
    assert job["payload"] == {"who": "ada", "times": 2}  # the first one won
    assert job["state"] == "queued" and job["name"] == "greet" and job["attempt"] >= 0
    assert job["created_at"] > 0


async def test_enqueue_options_reach_the_job(served: Served) -> None:
    c = served.client
    r = await c.post(
        jobs_path(served),
        json={
            "name": "greet",
            "payload": {"who": "x"},
            "priority": "high",
            "delay": 60,
            "max_attempts": 4,
            "timeout": 5.5,
            "request_id": "req-1",
        },
    )
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "scheduled"
    job = (await c.get(f"{jobs_path(served)}/{r.json()['id']}")).json()
    assert job["priority"] == "high"
    assert job["max_attempts"] == 4
    assert job["request_id"] == "req-1"
    assert job["run_at"] - job["created_at"] >= 59
    numeric = await c.post(
        jobs_path(served), json={"name": "greet", "payload": {"who": "y"}, "priority": 10}
    )
    job = (await c.get(f"{jobs_path(served)}/{numeric.json()['id']}")).json()
    assert job["priority"] == "critical"


async def test_validation_errors_name_what_is_wrong(served: Served) -> None:
    c = served.client
    path = jobs_path(served)
    r = await c.post(path, json={"name": "gret", "payload": {"who": "x"}})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "unknown_job"
    assert err["known"] == ["greet", "steps"]
    assert "greet" in err["message"] and "steps" in err["message"]
    # A job of another queue is unknown here too.
    r = await c.post(path, json={"name": "anything", "payload": {}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_job"

    r = await c.post(path, json={"name": "greet", "payload": {"who": 3}})
    assert r.status_code == 422
    assert r.json()["error"]["path"] == "$.payload.who"
    r = await c.post(path, json={"name": "greet", "payload": {"times": 1}})
    assert r.status_code == 422 and "who" in r.json()["error"]["message"]
    r = await c.post(path, json={"name": "greet", "payload": {"who": "x"}, "priority": "urgent"})
    assert r.status_code == 422 and r.json()["error"]["path"] == "$.priority"
    r = await c.post(path, json={"name": "greet", "payload": {"who": "x"}, "bogus": 1})
    assert r.status_code == 422
    r = await c.post(path, json={"name": "greet", "payload": {"who": "x"}, "id": "has space"})
    assert r.status_code == 422 and r.json()["error"]["path"] == "$.id"
    r = await c.post(path, content=b"{not json", headers=JSON)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    r = await c.post(path, content=b"", headers=JSON)
    assert r.status_code == 400
    r = await c.post(path, json=[1, 2])
    assert r.status_code == 422
    r = await c.post("/v1/queues/nowhere/jobs", json={"name": "greet", "payload": {}})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_queue"


async def test_reads_of_unknown_things_are_404_and_bad_ids_400(served: Served) -> None:
    c = served.client
    for path, status, code in [
        (f"{jobs_path(served)}/missing", 404, "job_not_found"),
        ("/v1/queues/never-seen/jobs/x", 404, "unknown_queue"),
        ("/v1/queues/never-seen", 404, "unknown_queue"),
        (f"{jobs_path(served)}/bad%20id", 400, "invalid_job_id"),
        (f"{jobs_path(served)}/{'x' * 201}", 400, "invalid_job_id"),
        (f"/v1/queues/{served.queue}/dead-letters?count=0", 400, "invalid_parameter"),
        (f"/v1/queues/{served.queue}/dead-letters?count=abc", 400, "invalid_parameter"),
        (f"/v1/queues/{served.queue}/dead-letters?after=zzz", 400, "invalid_entry_id"),
        ("/v1/no/such/route", 404, "not_found"),
    ]:
        r = await c.get(path)
        assert r.status_code == status, (path, r.text)
        assert r.json()["error"]["code"] == code, path
    r = await c.put(f"{jobs_path(served)}/x")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


async def test_limits_on_body_payload_and_batch(serve: Callable[..., Any]) -> None:
    settings = ServerSettings(
        max_body_bytes=20_000,
        max_payload_bytes=1_000,
        max_payload_depth=5,
        max_batch=10,
        rate_limit_per_second=0,
    )
    async with serve(settings) as s:
        c = s.client
        path = jobs_path(s)
        r = await c.post(path, json={"name": "greet", "payload": {"who": "x" * 30_000}})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

        # Chunked upload with no Content-Length: counted while read.
        async def chunks() -> Any:
            for _ in range(30):
                yield b" " * 1000

        r = await c.post(path, content=chunks(), headers=JSON)
        assert r.status_code == 413

        r = await c.post(path, json={"name": "greet", "payload": {"who": "x" * 2_000}})
        assert r.status_code == 413 and "$.payload" in r.json()["error"]["message"]
        deep: Any = "leaf"
        for _ in range(6):
            deep = [deep]
        r = await c.post(
            jobs_path(s, s.other_queue), json={"name": "anything", "payload": {"x": deep}}
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "payload_too_deep"
        r = await c.post(path, content=b"[" * 15_000 + b"]" * 15_000, headers=JSON)
        assert r.status_code == 413
        r = await c.post(
            path,
            content=b'{"name":"greet","payload":' + b"[" * 5000 + b"]" * 5000 + b"}",
            headers=JSON,
        )
        assert r.status_code == 400 and r.json()["error"]["code"] in {
            "payload_too_deep",
            "malformed_json",
        }

        batch = [{"name": "greet", "payload": {"who": str(i)}} for i in range(11)]
        r = await c.post(f"{path}:batch", json={"jobs": batch})
        assert r.status_code == 413 and r.json()["error"]["code"] == "batch_too_large"
        r = await c.post(f"{path}:batch", json={"jobs": []})
        assert r.status_code == 400


async def test_batch_is_all_or_nothing_and_reports_each_job(served: Served) -> None:
    c = served.client
    path = f"{jobs_path(served)}:batch"
    good = [{"name": "greet", "payload": {"who": str(i)}, "id": f"b-{i}"} for i in range(3)]
    bad = [*good, {"name": "greet", "payload": {"who": None}}]
    r = await c.post(path, json={"jobs": bad})
    assert r.status_code == 422
    assert r.json()["error"]["path"] == "$.jobs[3].payload.who"
    stats = (await c.get(f"/v1/queues/{served.queue}")).json()
    assert stats["counts"]["waiting"] == 0  # nothing half-written

    r = await c.post(path, json={"jobs": good})
    assert r.status_code == 202
    assert [j["id"] for j in r.json()["jobs"]] == ["b-0", "b-1", "b-2"]
    assert not any(j["deduplicated"] for j in r.json()["jobs"])
    r = await c.post(path, json={"jobs": good})
    assert r.status_code == 200
    assert all(j["deduplicated"] for j in r.json()["jobs"])
    r = await c.post(path, json={"jobs": [*good, {"name": "greet", "payload": {"who": "new"}}]})
    assert r.status_code == 202
    assert [j["deduplicated"] for j in r.json()["jobs"]] == [True, True, True, False]


async def test_cancel(served: Served, run_worker: Callable[..., Any]) -> None:
    c = served.client
    r = await c.post(jobs_path(served), json={"name": "greet", "payload": {"who": "x"}, "id": "c1"})
    assert r.status_code == 202
    r = await c.delete(f"{jobs_path(served)}/c1")
    assert r.status_code == 200
    assert r.json() == {"id": "c1", "queue": served.queue, "cancelled": True, "state": "cancelled"}
    r = await c.delete(f"{jobs_path(served)}/c1")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_cancellable"
    r = await c.delete(f"{jobs_path(served)}/never")
    assert r.status_code == 404


async def test_queue_list_and_detail(served: Served, run_worker: Callable[..., Any]) -> None:
    c = served.client
    enqueued = []
    for i in range(3):
        r = await c.post(jobs_path(served), json={"name": "greet", "payload": {"who": str(i)}})
        enqueued.append(r.json()["id"])
    r = await c.post(
        jobs_path(served), json={"name": "greet", "payload": {"who": "h"}, "priority": "high"}
    )
    enqueued.append(r.json()["id"])
    detail = (await c.get(f"/v1/queues/{served.queue}")).json()
    assert detail["name"] == served.queue
    assert detail["counts"]["waiting"] == 4
    assert detail["lanes"]["normal"]["depth"] == 3
    assert detail["lanes"]["high"]["depth"] == 1
    assert set(detail["lanes"]) == {"critical", "high", "normal", "low", "bulk"}
    assert detail["totals"]["enqueued"] == 4
    jobs = {j["name"]: j for j in detail["jobs"]}
    assert set(jobs) == {"greet", "steps"}
    schema = jobs["greet"]["payload_schema"]
    greet_schema = schema["$defs"]["Greet"] if "$defs" in schema else schema
    assert greet_schema["required"] == ["who"]
    assert greet_schema["properties"]["who"] == {"type": "string"}

    async with run_worker(served.app, concurrency=4):
        with anyio.fail_after(15):
            for handle in enqueued:
                await served.app.handle(served.queue, handle).wait(10)
    detail = (await c.get(f"/v1/queues/{served.queue}")).json()
    # Events per second over the last minute: the four completions just now.
    assert detail["rates"]["completed"] == round(4 / 60, 3)
    listing = (await c.get("/v1/queues")).json()["queues"]
    names = {q["name"] for q in listing}
    assert {served.queue, served.other_queue} <= names


async def test_pause_and_resume(served: Served) -> None:
    c = served.client
    r = await c.post(f"/v1/queues/{served.queue}/pause", headers=JSON)
    assert r.status_code == 200 and r.json() == {"queue": served.queue, "paused": True}
    assert (await c.get(f"/v1/queues/{served.queue}")).json()["paused"] is True
    r = await c.post(f"/v1/queues/{served.queue}/resume", headers=JSON)
    assert r.json() == {"queue": served.queue, "paused": False}
    assert (await c.get(f"/v1/queues/{served.queue}")).json()["paused"] is False
    assert (await c.post("/v1/queues/ghost/pause", headers=JSON)).status_code == 404


async def test_dead_letters_list_replay_purge(
    served: Served, run_worker: Callable[..., Any]
) -> None:
    c = served.client
    q = served.queue
    for i in range(3):
        r = await c.post(
            jobs_path(served),
            json={"name": "steps", "payload": {"steps": 0, "fail": True}, "id": f"d{i}"},
        )
        assert r.status_code == 202
    async with run_worker(served.app, concurrency=3):
        for i in range(3):
            await served.app.handle(q, f"d{i}").wait(10)
    r = await c.get(f"/v1/queues/{q}/dead-letters")
    letters = r.json()["dead_letters"]
    assert sorted(d["job"] for d in letters) == ["d0", "d1", "d2"]
    assert all("asked to fail" in (d["error"] or "") for d in letters)
    dead_job = (await c.get(f"{jobs_path(served)}/d0")).json()
    assert dead_job["state"] == "dead" and "asked to fail" in dead_job["error"]
    assert dead_job["reason"]
    page = (await c.get(f"/v1/queues/{q}/dead-letters?count=1")).json()["dead_letters"]
    assert [d["id"] for d in page] == [letters[0]["id"]]
    page = (await c.get(f"/v1/queues/{q}/dead-letters?after={letters[0]['id']}")).json()
    assert [d["id"] for d in page["dead_letters"]] == [d["id"] for d in letters[1:]]

    r = await c.post(f"/v1/queues/{q}/dead-letters/{letters[0]['id']}/replay")
    assert r.status_code == 200 and r.json() == {"queue": q, "count": 1}
    assert (await c.get(f"{jobs_path(served)}/{letters[0]['job']}")).json()["state"] == "queued"
    r = await c.post(f"/v1/queues/{q}/dead-letters/{letters[0]['id']}/replay")
    assert r.status_code == 404 and r.json()["error"]["code"] == "dead_letter_not_found"
    r = await c.delete(f"/v1/queues/{q}/dead-letters/{letters[1]['id']}")
    assert r.json() == {"queue": q, "count": 1}
    r = await c.delete(f"/v1/queues/{q}/dead-letters")
    assert r.json() == {"queue": q, "count": 1}
    assert (await c.get(f"/v1/queues/{q}/dead-letters")).json()["dead_letters"] == []
    r = await c.post(f"/v1/queues/{q}/dead-letters:replay")
    assert r.json() == {"queue": q, "count": 0}
    r = await c.post(f"/v1/queues/{q}/dead-letters/99999999999999999999-0/replay")
    assert r.status_code == 400


async def test_health_readiness_docs(served: Served) -> None:
    c = served.client
    assert (await c.get("/healthz")).json() == {"status": "ok"}
    assert (await c.get("/readyz")).json() == {"status": "ready", "redis": True}
    page = await c.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/queues/{queue}/jobs:batch" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere


async def test_readyz_is_503_when_redis_is_gone(serve: Callable[..., Any]) -> None:
    from streamq._embedded import free_port

    async with serve(ServerSettings(), url=f"redis://127.0.0.1:{free_port()}/0") as s:
        r = await s.client.get("/readyz")
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
        assert (await s.client.get("/healthz")).status_code == 200
        r = await s.client.get(f"/v1/queues/{s.queue}")
        assert r.status_code == 503 and r.json()["error"]["code"] == "broker_unavailable"


async def test_rate_limit_answers_429_with_retry_after(serve: Callable[..., Any]) -> None:
    settings = ServerSettings(rate_limit_per_second=1, rate_limit_burst=3).with_tokens(
        token_spec("one:read,two:read")
    )
    async with serve(settings) as s:
        one = bearer("one")
        codes = [(await s.client.get("/v1/queues", headers=one)).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = await s.client.get("/v1/queues", headers=one)
        assert r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
        # Per token: another caller is unaffected; health stays open.
        assert (await s.client.get("/v1/queues", headers=bearer("two"))).status_code == 200
        assert (await s.client.get("/healthz")).status_code == 200
