"""The OpenAPI 3.1 document, generated from the Operations and their msgspec types.

Nothing here is written by hand about bodies: request and response schemas come from
``msgspec.json.schema_components`` over the same Structs the handlers decode and encode with.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from server.errors import ErrorResponse
from server.routing import EVENT_STREAM, Operation
from server.schemas import ENTRY_ID_PATTERN, JOB_ID_PATTERN, QUEUE_PATTERN

REF = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"{([^}]+)}")
# Docstrings are written for Python readers; the document speaks Markdown and stands alone.
_RST_LITERAL = re.compile(r"``([^`]+)``")
_CITATION = re.compile(r"\s*\((?:see )?(?:DESIGN §[0-9.]+|01's [^)]*)[^)]*\)")


def markdown(text: str) -> str:
    """A docstring as a self-contained Markdown description."""
    return _CITATION.sub("", _RST_LITERAL.sub(r"`\1`", text))


_STATUS_TEXT = {
    200: "OK",
    202: "Accepted",
    400: "Bad request: malformed JSON, unknown job name, malformed id or parameter",
    401: "Missing or unknown bearer token",
    403: (
        "The token lacks the scope this endpoint needs on this queue (without tokens: a "
        "request from elsewhere, through an untrusted proxy, or for another Host or Origin)"
    ),
    408: "The request body did not arrive in time",
    404: "No such queue, job or dead letter",
    409: "The job is in a state that does not allow this",
    413: "Body, payload or batch too large",
    415: "Without tokens, writes must be sent as application/json",
    422: "The payload does not fit the job's schema (the error names the field path)",
    429: "Rate limit, quota, event-stream limit or failed-auth throttle reached; see Retry-After",
    503: "Redis is unreachable",
}


def _schema_hook(type_: Any) -> dict[str, Any]:
    if type_ is msgspec.Raw:
        return {"description": "Any JSON value; it must fit the payload schema of the job name."}
    raise NotImplementedError


def _path_param(path: str, name: str, example_queue: str | None) -> dict[str, Any]:
    if name == "queue":
        pattern = QUEUE_PATTERN
    elif "dead-letters" in path:
        pattern = ENTRY_ID_PATTERN
    else:
        pattern = JOB_ID_PATTERN
    param: dict[str, Any] = {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": pattern},
    }
    if name == "queue" and example_queue:
        param["example"] = example_queue
    return param


def _error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _STATUS_TEXT.get(status, "Error"),
        "content": {"application/json": {"schema": {"$ref": REF.format(name="ErrorResponse")}}},
    }
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return response


def build_openapi(
    operations: Sequence[Operation],
    *,
    title: str = "streamq",
    version: str = "0.1.0",
    example_queue: str | None = None,
    job_names: Sequence[str] = (),
    max_batch: int | None = None,
    max_delay: float | None = None,
) -> dict[str, Any]:
    """The OpenAPI document of ``operations``; ``example_queue`` (a queue the app serves)
    becomes the example of every ``{queue}`` parameter. Raises TypeError for a type msgspec
    cannot describe (a programming error, found when the app is built). ``job_names``,
    ``max_batch`` and ``max_delay`` narrow the enqueue bodies to what the server accepts."""
    types: list[Any] = [ErrorResponse]
    for op in operations:
        if op.body is not None:
            types.append(op.body)
        types.extend(t for t in op.responses.values() if isinstance(t, type))
    unique = list(dict.fromkeys(types))
    refs, components = msgspec.json.schema_components(
        unique, schema_hook=_schema_hook, ref_template=REF
    )
    ref_of = dict(zip(unique, refs, strict=True))
    _narrow(components, job_names=job_names, max_batch=max_batch, max_delay=max_delay)

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path_params = _PATH_PARAM.findall(op.path)
        parameters = [_path_param(op.path, name, example_queue) for name in path_params]
        parameters += [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required,
                "schema": p.schema,
                "description": p.description,
            }
            for p in op.params
        ]
        responses: dict[str, Any] = {}
        for status, kind in sorted(op.responses.items()):
            responses[str(status)] = _success(status, kind, ref_of)
            if op.links:
                responses[str(status)]["links"] = op.links
        errors = set(op.errors)
        if op.scope is not None:
            errors |= {401, 403, 429}
            if op.method in ("POST", "PUT", "PATCH"):
                errors |= {415}
        if op.probe:
            errors |= {429}
        if op.body is not None:
            errors |= {400, 408, 413, 422}
        if path_params:
            errors |= {404}
        if "id" in path_params:
            errors |= {400}
        for status in sorted(errors):
            responses[str(status)] = _error(status)
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "description": markdown(op.description),
            "tags": list(op.tags),
            "parameters": parameters,
            "responses": responses,
            "security": [{"bearer": []}] if op.scope else [],
            "x-required-scope": op.scope,
        }
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref_of[op.body]}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = entry

    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": (
                "The streamq job API. Send `Authorization: Bearer <token>`; a token's scopes "
                "are `meta`, `read`, `write` and `admin`, each over every queue or over the "
                "queues a glob matches (`read:analysis-*`); admin implies write and read, read "
                "implies meta (read without payloads, results and errors). `x-required-scope` "
                "names the scope an operation needs on the queue in its path. Errors are "
                '`{"error": {"code": ..., "message": ...}}`.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _narrow(
    components: dict[str, Any],
    *,
    job_names: Sequence[str],
    max_batch: int | None,
    max_delay: float | None,
) -> None:
    """Constraints the Structs cannot carry because they are settings of this server."""
    enqueue = components.get("EnqueueBody", {}).get("properties", {})
    if job_names and "name" in enqueue:
        enqueue["name"]["enum"] = sorted(set(job_names))
    if max_delay is not None and "delay" in enqueue:
        for branch in enqueue["delay"].get("anyOf", [enqueue["delay"]]):
            if branch.get("type") == "number":
                branch["maximum"] = max_delay
    jobs = components.get("BatchBody", {}).get("properties", {}).get("jobs")
    if jobs is not None:
        jobs["minItems"] = 1
        if max_batch is not None:
            jobs["maxItems"] = max_batch


def _success(status: int, kind: Any, ref_of: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    text = _STATUS_TEXT.get(status, "Success")
    if kind is None:
        return {"description": text}
    if kind == EVENT_STREAM:
        return {
            "description": "A server-sent-event stream; each event's id is its events-stream id",
            "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
        }
    if isinstance(kind, tuple):
        media_type, description, *schema = kind
        body_schema = schema[0] if schema else {"type": "string"}
        return {"description": description, "content": {media_type: {"schema": body_schema}}}
    return {"description": text, "content": {"application/json": {"schema": ref_of[kind]}}}
