"""Listing and finding jobs over HTTP: a queue's jobs by state and name with cursor pages,
the same across queues, a job by id in any queue; bad filters are 400s; scopes per queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from server_support import Served, bearer, register_tasks, token_spec

from server import ServerSettings, create_app, running_server
from streamq import App, EnqueueRequest


async def _pages(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(path, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        jobs.extend(body["jobs"])
        if body["next"] is None:
            return jobs
        cursor = body["next"]


async def test_list_search_and_find(served: Served) -> None:
    app, q, other = served.app, served.queue, served.other_queue
    t0 = time.time() - 1
    await app.enqueue_many(
        [EnqueueRequest(name="greet", payload={"who": f"w{i}"}, id=f"g{i}") for i in range(12)]
    )
    await app.enqueue("steps", {"steps": 1}, id="later", delay=600)
    await app.enqueue("anything", {}, id="elsewhere")
    c = served.client

    queued = await _pages(c, f"/v1/queues/{q}/jobs", state="queued", limit=5)
    assert sorted(j["id"] for j in queued) == sorted(f"g{i}" for i in range(12))
    assert {j["payload"]["who"] for j in queued} == {f"w{i}" for i in range(12)}
    assert {j["state"] for j in queued} == {"queued"}

    every = await _pages(c, f"/v1/queues/{q}/jobs", limit=4)
    assert len(every) == 13 and {j["id"] for j in every} >= {"later"}
    named = await _pages(c, f"/v1/queues/{q}/jobs", name="steps")
    assert [j["id"] for j in named] == ["later"]

    # Across queues (the server may hold other tests' queues: only ours are checked).
    across = await _pages(c, "/v1/jobs", state="queued", since=t0, limit=50)
    mine = [(j["queue"], j["id"]) for j in across if j["queue"] in (q, other)]
    assert sorted(mine) == sorted([(q, f"g{i}") for i in range(12)] + [(other, "elsewhere")])
    only = await _pages(c, "/v1/jobs", queue=other)
    assert [(j["id"], j["queue"]) for j in only] == [("elsewhere", other)]

    found = await c.get("/v1/jobs/elsewhere")
    assert found.status_code == 200 and found.json()["queue"] == other
    assert (await c.get("/v1/jobs/nobody")).status_code == 404


async def test_bad_filters_are_400(served: Served) -> None:
    c, q = served.client, served.queue
    for params in (
        {"state": "done"},
        {"lane": "urgent"},
        {"limit": "0"},
        {"limit": "100000"},
        {"since": "yesterday"},
        {"cursor": "garbage"},
    ):
        r = await c.get(f"/v1/queues/{q}/jobs", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["error"]["code"] == "invalid_parameter"
    assert (await c.get("/v1/queues/no-such-queue/jobs")).status_code == 404
    assert (await c.get("/v1/jobs/bad id")).status_code == 400


async def test_scopes_per_queue(valkey_url: str, uniq: Callable[[str], str]) -> None:
    inside, outside = uniq("scq"), uniq("out")
    settings = ServerSettings(rate_limit_per_second=0).with_tokens(
        token_spec("meta:meta:scq-*,reader:read:scq-*")
    )
    app = App("search-scopes", redis_url=valkey_url)
    register_tasks(app, inside, outside)
    try:
        await app.enqueue("greet", {"who": "in"}, id="in-1")
        await app.enqueue("anything", {}, id="out-1")
        async with (
            running_server(create_app(settings, app)) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as c,
        ):
            r = await c.get(f"/v1/queues/{outside}/jobs", headers=bearer("reader"))
            assert r.status_code == 403
            r = await c.get(f"/v1/queues/{inside}/jobs", headers=bearer("reader"))
            assert [j["payload"] for j in r.json()["jobs"]] == [{"who": "in", "times": 1}]
            r = await c.get(f"/v1/queues/{inside}/jobs", headers=bearer("meta"))
            assert [j["payload"] for j in r.json()["jobs"]] == [None]
            # Across queues and by id: only what the token may read.
            r = await c.get("/v1/jobs", headers=bearer("reader"))
            listed = {(j["queue"], j["id"]) for j in r.json()["jobs"]}
            assert (inside, "in-1") in listed and not any(q == outside for q, _ in listed)
            assert (await c.get("/v1/jobs/out-1", headers=bearer("reader"))).status_code == 404
            r = await c.get("/v1/jobs", params={"queue": outside}, headers=bearer("reader"))
            assert r.status_code == 403
            assert (await c.get("/v1/jobs")).status_code == 401
    finally:
        await app.close()
