"""Parts of the server that need no broker: limits, rate tracking, OpenAPI generation."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from server.app import OPERATIONS
from server.errors import ApiError
from server.limits import RateLimiter, StreamSlots, check_payload, decode_json, json_depth
from server.openapi import build_openapi
from server.rates import RateTracker
from server.schemas import EnqueueBody
from server.sse import entry_id_at, entry_key


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"1", 0),
        (b'"[[["', 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": "]]]"}]}', 3),
        (b'["\\"[", [[]]]', 3),
        (b'["\\\\", [[]]]', 3),
        (b"[" * 50 + b"]" * 50, 50),
    ],
)
def test_json_depth_ignores_brackets_in_strings(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


def test_json_depth_stops_early_on_huge_nesting() -> None:
    assert json_depth(b"[" * 1_000_000, stop_above=32) == 33


def test_check_payload_limits() -> None:
    check_payload(b'{"a": [1]}', max_bytes=100, max_depth=2, where="$.payload")
    with pytest.raises(ApiError) as too_big:
        check_payload(b"x" * 101, max_bytes=100, max_depth=2, where="$.payload")
    assert too_big.value.status == 413
    with pytest.raises(ApiError) as too_deep:
        check_payload(b"[[[1]]]", max_bytes=100, max_depth=2, where="$.payload")
    assert too_deep.value.status == 400 and too_deep.value.detail.code == "payload_too_deep"


def test_decode_json_maps_every_failure_to_4xx() -> None:
    for body, status in [
        (b"", 400),
        (b"{", 400),
        (b"[" * 100_000, 422),  # typed decoding stops at the first wrong type
        (b'{"name": "x", "payload": ' + b"[" * 100_000, 400),
        (b'{"name": 1, "payload": 2}', 422),
        (b'{"payload": 1}', 422),
        (b'{"name": "x", "payload": 1, "extra": 2}', 422),
        (b"\xff\xfe", 400),
    ]:
        with pytest.raises(ApiError) as err:
            decode_json(body, EnqueueBody)
        assert err.value.status == status, body
    body = decode_json(b'{"name": "x", "payload": {"deep": [1]}}', EnqueueBody)
    assert bytes(body.payload) == b'{"deep": [1]}'


def test_rate_limiter_refills_over_time() -> None:
    limiter = RateLimiter(rate=2.0, burst=2)
    limiter.check("a", now=0.0)
    limiter.check("a", now=0.0)
    with pytest.raises(ApiError) as err:
        limiter.check("a", now=0.1)
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "1"
    limiter.check("b", now=0.1)  # per caller
    limiter.check("a", now=0.6)  # half a second later: one token back
    RateLimiter(rate=0, burst=1).check("a")  # 0 = off


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_callers=100)
    for i in range(1000):
        limiter.check(f"caller-{i}", now=0.0)
    assert len(limiter._buckets) == 100


def test_stream_slots() -> None:
    slots = StreamSlots(limit=2)
    slots.acquire("a")
    slots.acquire("a")
    with pytest.raises(ApiError) as err:
        slots.acquire("a")
    assert err.value.status == 429
    slots.acquire("b")
    assert slots.total == 3
    slots.release("a")
    slots.acquire("a")
    for key in ("a", "a", "b"):
        slots.release(key)
    assert slots.total == 0


def test_rates_from_samples() -> None:
    tracker = RateTracker(window=60)
    tracker.record("q", {"completed": 10}, now=100.0)
    assert tracker.rates("q") == {}
    tracker.record("q", {"completed": 30, "enqueued": 5}, now=110.0)
    assert tracker.rates("q") == {"completed": 2.0, "enqueued": 0.5}
    tracker.record("q", {"completed": 90, "enqueued": 5}, now=200.0)  # old samples age out
    assert tracker.rates("q")["completed"] == pytest.approx(60 / 90, abs=1e-3)


def test_entry_ids() -> None:
    assert entry_key("1700000000000-5") == (1700000000000, 5)
    before = entry_id_at(1700000000000)
    assert entry_key(before) < entry_key("1700000000000-0")
    assert entry_key(before) > entry_key("1699999999999-99")


def _resolve(document: dict[str, Any], node: Any) -> None:
    """Every $ref in the document points at an existing component."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/components/schemas/")
            assert name in document["components"]["schemas"], ref
        for value in node.values():
            _resolve(document, value)
    elif isinstance(node, list):
        for value in node:
            _resolve(document, value)


def test_openapi_is_generated_from_the_types() -> None:
    document = build_openapi(OPERATIONS)
    json.dumps(document)  # plain JSON
    assert document["openapi"].startswith("3.1")
    _resolve(document, document)
    schemas = document["components"]["schemas"]
    # The request schema is msgspec's, not a copy: same properties and requirements.
    (_ref,), components = msgspec.json.schema_components(
        [EnqueueBody],
        schema_hook=lambda t: {"description": "any"},
        ref_template="#/components/schemas/{name}",
    )
    assert set(schemas["EnqueueBody"]["properties"]) == set(components["EnqueueBody"]["properties"])
    assert schemas["EnqueueBody"]["required"] == ["payload", "name"]
    assert schemas["ErrorResponse"]["required"] == ["error"]
    paths = document["paths"]
    assert len([m for p in paths.values() for m in p]) == len(OPERATIONS)
    enqueue = paths["/v1/queues/{queue}/jobs"]["post"]
    assert set(enqueue["responses"]) >= {
        "200",
        "202",
        "400",
        "401",
        "403",
        "404",
        "413",
        "422",
        "429",
    }
    assert enqueue["security"] == [{"bearer": []}]
    assert enqueue["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EnqueueBody"
    }
    assert paths["/healthz"]["get"]["security"] == []
    events = paths["/v1/queues/{queue}/jobs/{id}/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert {p["name"] for p in events["parameters"]} == {
        "queue",
        "id",
        "Last-Event-ID",
        "last_event_id",
    }
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
