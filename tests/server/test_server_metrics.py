"""/metrics: Prometheus text that parses, carries the DESIGN §6 names, and reads the queue
gauges from Redis at scrape time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from prometheus_client.parser import text_string_to_metric_families
from server_support import JSON, Served, bearer, token_spec

from server import ServerSettings, create_app

DESIGN_NAMES = {
    # counters and histograms (recorded by producers/workers in this process)
    "streamq_jobs_enqueued",
    "streamq_jobs_completed",
    "streamq_jobs_failed",
    "streamq_jobs_retried",
    "streamq_jobs_dead",
    "streamq_jobs_reclaimed",
    "streamq_job_run_seconds",
    "streamq_job_wait_seconds",
    # gauges read from Redis at scrape time
    "streamq_lane_depth",
    "streamq_pending_jobs",
    "streamq_delayed_jobs",
    "streamq_dead_jobs",
    "streamq_oldest_waiting_seconds",
    "streamq_workers_alive",
    "streamq_queue_paused",
    # the server's own
    "streamq_sse_clients",
    "streamq_http_requests",
    "streamq_http_request_seconds",
}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


async def test_metrics_parse_and_show_the_whole_system(
    served: Served, run_worker: Callable[..., Any]
) -> None:
    c = served.client
    q = served.queue
    await c.post(f"/v1/queues/{q}/pause", headers=JSON)
    ids = []
    for i in range(3):
        r = await c.post(f"/v1/queues/{q}/jobs", json={"name": "greet", "payload": {"who": str(i)}})
        ids.append(r.json()["id"])
    await c.post(
        f"/v1/queues/{q}/jobs", json={"name": "greet", "payload": {"who": "later"}, "delay": 300}
    )
    r = await c.post(
        f"/v1/queues/{q}/jobs",
        json={"name": "greet", "payload": {"who": "hi"}, "priority": "high"},
    )
    ids.append(r.json()["id"])
    await c.post(f"/v1/queues/{q}/jobs", json={"name": "nope", "payload": {}})
    async with c.stream("GET", f"/v1/queues/{q}/events") as stream:
        assert stream.status_code == 200
        text = (await c.get("/metrics")).text
    assert (await c.get("/metrics")).headers["content-type"].startswith("text/plain")
    families = {f.name for f in text_string_to_metric_families(text)}
    got = samples(text)

    def value(metric: str, /, **labels: str) -> float:
        return got[(metric, frozenset(labels.items()))]

    assert value("streamq_lane_depth", queue=q, lane="normal") == 3
    assert value("streamq_lane_depth", queue=q, lane="high") == 1
    assert value("streamq_lane_depth", queue=q, lane="bulk") == 0
    assert value("streamq_pending_jobs", queue=q, lane="normal") == 0
    assert value("streamq_delayed_jobs", queue=q) == 1
    assert value("streamq_dead_jobs", queue=q) == 0
    assert value("streamq_queue_paused", queue=q) == 1
    assert value("streamq_workers_alive", queue=q) == 0
    assert value("streamq_oldest_waiting_seconds", queue=q) >= 0
    assert value("streamq_queue_paused", queue=served.other_queue) == 0  # every queue
    assert value("streamq_sse_clients") == 1
    assert (
        value(
            "streamq_http_requests_total",
            method="POST",
            route="/v1/queues/{queue}/jobs",
            status="202",
        )
        == 5
    )
    assert (
        value(
            "streamq_http_requests_total",
            method="POST",
            route="/v1/queues/{queue}/jobs",
            status="400",
        )
        == 1
    )
    assert value("streamq_http_request_seconds_count", route="/v1/queues/{queue}/jobs") == 6
    assert value("streamq_redis_up") == 1

    # Work happens: the worker's counters (same process) and the gauges move.
    await c.post(f"/v1/queues/{q}/resume", headers=JSON)
    async with run_worker(served.app, concurrency=4):
        with anyio.fail_after(10):
            for job_id in ids:
                await served.app.handle(q, job_id).wait(10)
        text = (await c.get("/metrics")).text
    got = samples(text)
    families = {f.name for f in text_string_to_metric_families(text)}
    assert value("streamq_lane_depth", queue=q, lane="normal") == 0
    assert value("streamq_queue_paused", queue=q) == 0
    assert value("streamq_workers_alive", queue=q) == 1
    assert value("streamq_jobs_completed_total", queue=q, name="greet") == 4
    assert value("streamq_sse_clients") == 0
    assert DESIGN_NAMES <= families, DESIGN_NAMES - families
    for name in DESIGN_NAMES:
        assert f"# TYPE {name}" in text


async def test_each_app_has_its_own_registry(served: Served) -> None:
    settings = ServerSettings(include_process_metrics=False)
    first = create_app(settings, served.app).state.streamq.metrics
    second = create_app(settings, served.app).state.streamq.metrics
    assert first.registry is not second.registry
    first.requests.labels("GET", "/x", "200").inc()
    assert b"/x" not in await second.render(include_process=False)
    assert b"/x" in await first.render(include_process=False)


async def test_metrics_need_read_when_tokens_are_configured(serve: Callable[..., Any]) -> None:
    async with serve(ServerSettings().with_tokens(token_spec("r:read,w:write"))) as s:
        assert (await s.client.get("/metrics")).status_code == 401
        assert (await s.client.get("/metrics", headers=bearer("w"))).status_code == 403
        r = await s.client.get("/metrics", headers=bearer("r"))
        assert r.status_code == 200
        assert any(f.name == "streamq_lane_depth" for f in text_string_to_metric_families(r.text))


async def test_request_labels_stay_bounded(served: Served) -> None:
    for i in range(5):
        await served.client.request("BREW", f"/v1/no/such/{i}")
        await served.client.get(f"/v1/queues/{served.queue}/jobs/job-{i}")
    text = (await served.client.get("/metrics")).text
    got = samples(text)
    assert (
        got[
            (
                "streamq_http_requests_total",
                frozenset({"method": "other", "route": "unmatched", "status": "404"}.items()),
            )
        ]
        == 5
    )
    assert "BREW" not in text and "job-3" not in text and "/v1/no/such" not in text
