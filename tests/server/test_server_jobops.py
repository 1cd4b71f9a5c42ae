"""Changing a job's priority and deleting a queue over HTTP (admin): success, refusals (409,
404, 422) and what is left afterwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from server_support import Served

from streamq import EnqueueRequest
from streamq._scripts import Settlement
from streamq._types import LANES


async def test_change_priority(served: Served) -> None:
    app, q, c = served.app, served.queue, served.client
    await app.enqueue("greet", {"who": "a"}, id="waits")
    await app.enqueue("greet", {"who": "b"}, id="later", delay=600)
    r = await c.post(f"/v1/queues/{q}/jobs/waits/priority", json={"priority": "critical"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["priority"]) == ("queued", "critical")
    r = await c.post(f"/v1/queues/{q}/jobs/later/priority", json={"priority": 1})
    assert r.status_code == 200 and r.json()["priority"] == "bulk"
    listed = (await c.get(f"/v1/queues/{q}/jobs", params={"lane": "critical"})).json()
    assert [j["id"] for j in listed["jobs"]] == ["waits"]

    await app.cancel(q, "waits")
    r = await c.post(f"/v1/queues/{q}/jobs/waits/priority", json={"priority": "low"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_state"
    assert "it is cancelled" in r.json()["error"]["message"]
    r = await c.post(f"/v1/queues/{q}/jobs/nobody/priority", json={"priority": "low"})
    assert r.status_code == 404
    for body in ({"priority": "urgent"}, {"priority": 11}, {}, {"priority": "low", "x": 1}):
        r = await c.post(f"/v1/queues/{q}/jobs/later/priority", json=body)
        assert r.status_code in (400, 422), (body, r.text)


async def test_job_page_offers_priority_for_waiting_jobs(served: Served) -> None:
    app, q = served.app, served.queue
    await app.enqueue("greet", {"who": "a"}, id="waits", priority="low")
    await app.enqueue("greet", {"who": "b"}, id="gone")
    await app.cancel(q, "gone")
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as browser:
        page = await browser.get(f"/ui/queues/{q}/jobs/waits")
        assert page.status_code == 200
        assert "data-job-priority" in page.text
        assert '<option value="low" selected>' in page.text
        page = await browser.get(f"/ui/queues/{q}/jobs/gone")
        assert "data-job-priority" not in page.text


async def test_delete_queue(served: Served, run_worker: Callable[..., Any]) -> None:
    app, q, c = served.app, served.queue, served.client
    await app.enqueue_many(
        [EnqueueRequest(name="greet", payload={"who": f"{i}"}, id=f"g{i}") for i in range(30)]
    )
    assert (await c.delete("/v1/queues/no-such-queue")).status_code == 404
    assert (await c.delete(f"/v1/queues/{q}", params={"force": "maybe"})).status_code == 400
    async with run_worker(app):
        await app.handle(q, "g0").result(timeout=20)
        r = await c.delete(f"/v1/queues/{q}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "queue_in_use"
        assert (await c.get(f"/v1/queues/{q}/jobs/g0")).status_code == 200
        r = await c.delete(f"/v1/queues/{q}", params={"force": "true"})
        assert r.status_code == 200, r.text
        assert r.json() == {"queue": q, "jobs": 30, "done": True}
    # Its tasks are still registered with the app, so the queue is there, empty.
    assert (await c.get(f"/v1/queues/{q}/jobs")).json() == {"jobs": [], "next": None}
    assert (await c.get(f"/v1/queues/{q}/jobs/g0")).status_code == 404


async def test_dead_letters_grouped_by_error(served: Served) -> None:
    app, q, c = served.app, served.queue, served.client
    await app.enqueue_many(
        [EnqueueRequest(name="greet", payload={"who": f"{i}"}, id=f"d{i}") for i in range(7)]
    )
    fetched = (
        await app.scripts.fetch(
            q, consumer="w", count=7, promote_limit=0, may_take_suspect=True, lanes=LANES
        )
    ).jobs
    errors = [
        *(f"Traceback ...\nTimeoutError: provider took {i}.5 s for 'w{i}'" for i in range(4)),
        *(f"KeyError: 'balance' in block 0x{i}ff" for i in range(2)),
        "",
    ]
    await app.scripts.settle(
        q,
        [
            Settlement("dead", f.job_id, f.lane, f.entry_id, f.fence, data=e, ttl_ms=600_000)
            for f, e in zip(fetched, errors, strict=True)
        ],
    )
    plain = await c.get(f"/v1/queues/{q}/dead-letters")
    assert plain.status_code == 200 and "groups" not in plain.json()
    r = await c.get(f"/v1/queues/{q}/dead-letters", params={"group": "error"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["dead_letters"]) == 7
    assert [(g["signature"], g["count"]) for g in body["groups"]] == [
        ("TimeoutError: provider took # s for '…'", 4),
        ("KeyError: '…' in block #", 2),
        ("(no error)", 1),  # no error and no reason given
    ]
    ids = {d["id"] for d in body["dead_letters"]}
    assert {i for g in body["groups"] for i in g["ids"]} == ids
    assert body["groups"][0]["names"] == ["greet"]
    bad = await c.get(f"/v1/queues/{q}/dead-letters", params={"group": "name"})
    assert bad.status_code == 400


async def test_tag_filter(served: Served) -> None:
    app, q, c = served.app, served.queue, served.client
    for i in range(5):
        await app.enqueue("greet", {"who": f"{i}"}, id=f"w{i}", tags=[f"wallet:{i % 2}"])
    r = await c.get(f"/v1/queues/{q}/jobs", params={"tag": "wallet:0"})
    assert r.status_code == 200 and [j["id"] for j in r.json()["jobs"]] == ["w4", "w2", "w0"]
    r = await c.get("/v1/jobs", params={"tag": "wallet:1", "queue": q, "state": "queued"})
    assert [j["id"] for j in r.json()["jobs"]] == ["w3", "w1"]
    assert (await c.get(f"/v1/queues/{q}/jobs/w3")).json()["tags"] == ["wallet:1"]
    page = await c.get(f"/ui/queues/{q}/jobs/w3")
    assert f'href="/ui/queues/{q}?tag=wallet%3A1">wallet:1</a>' in page.text
    assert (await c.get(f"/v1/queues/{q}/jobs", params={"tag": "a b"})).status_code == 400
    r = await c.post(f"/v1/queues/{q}/jobs:cancel", json={"filter": {"tag": "wallet:1"}})
    assert r.status_code == 200 and r.json()["count"] == 2
    left = (await c.get(f"/v1/queues/{q}/jobs", params={"state": "queued"})).json()["jobs"]
    assert sorted(j["id"] for j in left) == ["w0", "w2", "w4"]
    spec = (await c.get("/openapi.json")).json()
    params = spec["paths"]["/v1/queues/{queue}/jobs"]["get"]["parameters"]
    assert "tag" in {p["name"] for p in params}
    page = await c.get(f"/ui/queues/{q}", params={"tag": "wallet:0"})
    assert page.status_code == 200 and 'name="tag" value="wallet:0"' in page.text
