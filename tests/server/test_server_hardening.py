"""What the server says about itself matches what it enforces (issue 11, finding 8): the
OpenAPI document carries the job names, delay bound and batch bounds, and documents the
statuses the guards answer with; HTML carries a strict CSP, every response nosniff."""

from __future__ import annotations

from typing import Any

from server_support import Served


async def test_html_gets_security_headers_and_json_gets_nosniff(served: Served) -> None:
    docs = await served.client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    policy = docs.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    # The page (Swagger UI) runs only the server's own scripts: no inline or foreign ones.
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert docs.headers["x-frame-options"] == "DENY"
    api = await served.client.get("/v1/queues")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers


async def test_the_schema_says_what_the_server_enforces(served: Served) -> None:
    doc: dict[str, Any] = (await served.client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    body = schemas["EnqueueBody"]["properties"]
    assert body["name"]["enum"] == ["anything", "greet", "steps"]
    (number,) = [b for b in body["delay"]["anyOf"] if b.get("type") == "number"]
    assert number["maximum"] == 30 * 86400
    jobs = schemas["BatchBody"]["properties"]["jobs"]
    assert (jobs["minItems"], jobs["maxItems"]) == (1, 1000)
    enqueue = doc["paths"]["/v1/queues/{queue}/jobs"]["post"]
    assert {"403", "408", "415", "422", "429", "503"} <= set(enqueue["responses"])
    assert "429" in doc["paths"]["/readyz"]["get"]["responses"]
    assert "429" in doc["paths"]["/metrics"]["get"]["responses"]
    queue = next(p for p in enqueue["parameters"] if p["name"] == "queue")
    assert queue["schema"]["pattern"]
    # The refusals the schema promises are what the server answers.
    r = await served.client.post(f"/v1/queues/{served.queue}/jobs:batch", json={"jobs": []})
    assert r.status_code == 400
    r = await served.client.post(
        f"/v1/queues/{served.queue}/jobs",
        json={"name": "greet", "payload": {"who": "x"}, "delay": 30 * 86400 + 1},
    )
    assert r.status_code == 422
