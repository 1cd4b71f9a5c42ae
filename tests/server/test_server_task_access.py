"""The server's half of tasks that are not for every client (issue 11, finding 1): a task that
is not ``public`` cannot be enqueued over the generic API, and an id inside a task's reserved
id space cannot be planted. The tasks of ``server_support`` are public; these tests turn the
options of ``@app.task(..., public=, reserved_ids=)`` on the registered TaskDefs."""

from __future__ import annotations

from server_support import Served


async def test_a_private_task_is_refused_and_not_advertised(served: Served) -> None:
    served.app.tasks["steps"].public = False
    s = served
    path = f"/v1/queues/{s.queue}/jobs"
    r = await s.client.post(path, json={"name": "steps", "payload": {"steps": 1}, "id": "p-1"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "job_not_public"
    assert r.json()["error"]["known"] == ["greet"]
    r = await s.client.post(
        path + ":batch",
        json={
            "jobs": [{"name": "greet", "payload": {"who": "a"}}, {"name": "steps", "payload": {}}]
        },
    )
    assert r.status_code == 403 and r.json()["error"]["path"] == "$.jobs[1].name"
    assert await s.app.job(s.queue, "p-1") is None
    accepted = (await s.client.get(f"/v1/queues/{s.queue}")).json()["jobs"]
    assert [j["name"] for j in accepted] == ["greet"]
    # The application itself still enqueues it.
    await s.app.enqueue("steps", {"steps": 1}, id="p-2", queue=s.queue)
    assert (await s.client.get(f"{path}/p-2")).status_code == 200


async def test_an_id_in_a_reserved_space_cannot_be_planted(served: Served) -> None:
    s = served
    s.app.tasks["steps"].reserved_ids = "bal:"
    s.app.tasks["greet"].reserved_ids = lambda job_id: job_id.startswith("sync-")
    path = f"/v1/queues/{s.queue}/jobs"
    for planted in ("bal:wallet-1:123", "sync-wallet-1"):
        # Under any job name of the queue: the application would dedup onto it.
        r = await s.client.post(
            path, json={"name": "greet", "payload": {"who": "x"}, "id": planted}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "reserved_id", planted
        assert r.json()["error"]["path"] == "$.id"
        assert await s.app.job(s.queue, planted) is None
    r = await s.client.post(path, json={"name": "greet", "payload": {"who": "x"}, "id": "mine-1"})
    assert r.status_code == 202
