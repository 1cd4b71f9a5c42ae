"""Job and queue operations over HTTP (admin): retry, promote, remove one job (409 when the
state does not allow it), many by ids or by filter (resumable), drain and clean."""

from __future__ import annotations

import asyncio

from server_support import Served

from streamq import EnqueueRequest


async def test_one_job(served: Served) -> None:
    app, q, c = served.app, served.queue, served.client
    await app.enqueue("greet", {"who": "a"}, id="later", delay=600)
    r = await c.post(f"/v1/queues/{q}/jobs/later/retry")
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_state"
    assert "it is scheduled" in r.json()["error"]["message"]
    r = await c.post(f"/v1/queues/{q}/jobs/later/promote")
    assert r.status_code == 200 and r.json()["state"] == "queued"
    assert (await c.post(f"/v1/queues/{q}/jobs/later/promote")).status_code == 409
    assert (await c.post(f"/v1/queues/{q}/jobs/nobody/retry")).status_code == 404
    assert (await c.post(f"/v1/queues/{q}/jobs/later/remove")).status_code == 409
    await app.cancel(q, "later")
    r = await c.post(f"/v1/queues/{q}/jobs/later/retry")
    assert r.status_code == 200 and (r.json()["state"], r.json()["attempt"]) == ("queued", 1)
    await app.cancel(q, "later")
    assert (await c.post(f"/v1/queues/{q}/jobs/later/remove")).status_code == 204
    assert (await c.get(f"/v1/queues/{q}/jobs/later")).status_code == 404


async def test_many_drain_and_clean(served: Served) -> None:
    app, q, c = served.app, served.queue, served.client
    await app.enqueue_many(
        [
            EnqueueRequest(name="greet", payload={"who": f"{i}"}, id=f"s{i}", delay=600)
            for i in range(30)
        ]
    )
    r = await c.post(f"/v1/queues/{q}/jobs:promote", json={"ids": ["s0", "s1", "nobody"]})
    body = r.json()
    assert (body["done"], body["missing"], body["next"]) == (2, ["nobody"], None)
    r = await c.post(f"/v1/queues/{q}/jobs:promote", json={"ids": ["s0"]})
    assert r.json()["refused"] == {"s0": "queued"}
    r = await c.post(
        f"/v1/queues/{q}/jobs:promote", json={"filter": {"state": "scheduled", "name": "greet"}}
    )
    assert (r.json()["done"], r.json()["next"]) == (28, None)
    r = await c.post(f"/v1/queues/{q}/jobs:promote", json={"ids": ["a"], "filter": {}})
    assert r.status_code == 400
    r = await c.post(f"/v1/queues/{q}/jobs:promote", json={"filter": {"state": "done"}})
    assert r.status_code == 422
    await app.cancel(q, "s5")
    r = await c.post(f"/v1/queues/{q}:drain")
    assert r.json() == {"queue": q, "count": 29}
    await asyncio.sleep(0.02)
    r = await c.post(f"/v1/queues/{q}:clean", json={"older_than": 0.01, "state": "cancelled"})
    assert r.json() == {"queue": q, "count": 1}
    assert (await c.get(f"/v1/queues/{q}/jobs")).json() == {"jobs": [], "next": None}


async def test_bulk_cancel_and_the_dashboards_filter(served: Served) -> None:
    """What the dashboard's explorer sends: a filter from an HTML form (times as strings),
    ``count`` in the answer; cancel by ids or by filter."""
    app, q, c = served.app, served.queue, served.client
    await app.enqueue_many(
        [EnqueueRequest(name="greet", payload={"who": f"{i}"}, id=f"c{i}") for i in range(6)]
    )
    r = await c.post(f"/v1/queues/{q}/jobs:cancel", json={"ids": ["c0", "c1"]})
    assert (r.json()["count"], r.json()["done"]) == (2, 2)
    r = await c.post(
        f"/v1/queues/{q}/jobs:cancel",
        json={"filter": {"state": "queued", "since": "1000000000", "until": "99999999999"}},
    )
    assert r.status_code == 200 and r.json()["count"] == 4
    r = await c.post(f"/v1/queues/{q}/jobs:retry", json={"filter": {"state": "cancelled"}})
    assert r.json()["count"] == 6
    r = await c.post(f"/v1/queues/{q}/jobs:retry", json={"filter": {"tag": "wallet:1"}})
    assert r.status_code == 200 and r.json()["count"] == 0  # no job has that tag
