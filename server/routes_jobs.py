"""Job endpoints: enqueue (one or many), read, cancel."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import streamq
from server.context import Call, check_job_id, json_response
from server.errors import ApiError
from server.limits import check_payload, decode_json, read_body, validation_error
from server.routing import OperationTable
from server.schemas import (
    BatchBody,
    BatchResult,
    CancelResult,
    EnqueueBody,
    EnqueueResult,
    JobLinks,
    JobView,
)

operation = OperationTable(tags=("jobs",))
_enqueuing = operation.preset(scope="write", errors=(400, 404, 413, 422, 429, 503))
TERMINAL = streamq.TERMINAL_STATES
_JOB = {"queue": "$request.path.queue", "id": "$response.body#/id"}
JOB_LINKS = {
    "ReadJob": {"operationId": "get_job", "parameters": _JOB},
    "CancelJob": {"operationId": "cancel_job", "parameters": _JOB},
    "FollowJob": {"operationId": "job_events", "parameters": _JOB},
}


def job_links(queue: str, job_id: str) -> JobLinks:
    base = f"/v1/queues/{queue}/jobs/{job_id}"
    return JobLinks(self=base, events=f"{base}/events")


async def _task_queue(call: Call, queue: str) -> str:
    """``queue`` if this server has tasks for it; enqueueing elsewhere cannot be validated."""
    queues = call.state.task_queues()
    if queue not in queues:
        raise ApiError(
            404,
            "unknown_queue",
            f"no tasks are registered for queue {queue!r}; known: {', '.join(queues) or 'none'}",
            known=queues,
        )
    return queue


def is_public(task: streamq.TaskDef) -> bool:
    """Whether clients of the generic API may enqueue ``task`` (``@app.task(...,
    public=True)``; off by default)."""
    return task.public


def _to_request(call: Call, queue: str, body: EnqueueBody, where: str) -> streamq.EnqueueRequest:
    app = call.app
    try:
        task = app.task_def(queue, body.name)
    except streamq.UnknownJob as exc:
        raise ApiError(
            400, "unknown_job", str(exc), path=f"{where}.name", known=exc.known
        ) from None
    if not is_public(task):
        known = sorted(t.name for t in app.tasks.values() if t.queue == queue and is_public(t))
        raise ApiError(
            403,
            "job_not_public",
            f"job {body.name!r} is started by the application only",
            path=f"{where}.name",
            known=known,
        )
    if body.id is not None:
        owner = next(
            (t for t in app.tasks.values() if t.queue == queue and t.reserves(body.id)), None
        )
        if owner is not None:
            raise ApiError(
                403,
                "reserved_id",
                f"id {body.id!r} lies in the id space the application keeps for {owner.name!r}",
                path=f"{where}.id",
            )
    settings = call.state.settings
    if body.delay is not None and body.delay > settings.max_delay_seconds:
        raise ApiError(
            422,
            "delay_too_far",
            f"delay {body.delay:g}s is beyond the furthest allowed, {settings.max_delay_seconds:g}s",
            path=f"{where}.delay",
        )
    raw = bytes(body.payload)
    check_payload(
        raw,
        max_bytes=settings.max_payload_bytes,
        max_depth=settings.max_payload_depth,
        where=f"{where}.payload",
    )
    try:
        payload: Any = msgspec.json.decode(raw, type=task.payload_type)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, f"{where}.payload") from None
    except (msgspec.DecodeError, RecursionError):
        raise ApiError(400, "malformed_json", "payload is not valid JSON") from None
    # The body's options carry over by name; the payload is the one decoded above.
    request = msgspec.convert(body, streamq.EnqueueRequest, from_attributes=True)
    return msgspec.structs.replace(request, payload=payload, queue=queue)


def _result(handle: streamq.JobHandle) -> EnqueueResult:
    return EnqueueResult(
        id=handle.id,
        queue=handle.queue,
        state=handle.state_at_enqueue or "queued",
        deduplicated=handle.deduplicated,
        links=job_links(handle.queue, handle.id),
    )


def _charge_quota(call: Call, jobs: int, size: int) -> None:
    """Takes ``jobs`` and ``size`` bytes from the caller's enqueue quotas, or ApiError 429
    with ``Retry-After``."""
    state = call.state
    state.enqueued_bytes.check(call.caller, cost=size, what="bytes")
    state.enqueued_jobs.check(call.caller, cost=jobs, what="jobs")


async def _enqueue(
    request: Request, call: Call, requests: list[streamq.EnqueueRequest]
) -> list[EnqueueResult]:
    _charge_quota(call, len(requests), len(request.state.body))
    try:
        handles = await call.app.enqueue_many(requests)
    except streamq.InvalidPayload as exc:
        raise ApiError(422, "invalid_payload", str(exc), path=exc.path) from None
    except streamq.InvalidJobId as exc:
        raise ApiError(400, "invalid_job_id", str(exc)) from None
    except streamq.InvalidJob as exc:
        raise ApiError(400, "invalid_job", str(exc)) from None
    request.state.audit_jobs = [h.id for h in handles]
    return [_result(h) for h in handles]


@_enqueuing.post(
    "/v1/queues/{queue}/jobs",
    summary="Enqueue a job",
    body=EnqueueBody,
    responses={202: EnqueueResult, 200: EnqueueResult},
    links=JOB_LINKS,
)
async def enqueue_job(request: Request, call: Call) -> Response:
    """Validates ``name`` against the queue's tasks and ``payload`` against the task's type.
    202 for a new job; 200 with ``deduplicated: true`` when a job with that id exists.
    Quotas per token: jobs per second and body bytes per minute (429 with Retry-After), the
    furthest ``delay`` (422 ``delay_too_far``)."""
    queue = await _task_queue(call, request.path_params["queue"])
    body = decode_json(await read_body(request, call.state.settings.max_body_bytes), EnqueueBody)
    [result] = await _enqueue(request, call, [_to_request(call, queue, body, "$")])
    response = json_response(result, 200 if result.deduplicated else 202)
    response.headers["Location"] = result.links.self
    return response


@_enqueuing.post(
    "/v1/queues/{queue}/jobs:batch",
    summary="Enqueue many jobs",
    body=BatchBody,
    responses={202: BatchResult, 200: BatchResult},
)
async def enqueue_batch(request: Request, call: Call) -> Response:
    """All jobs are validated before any is enqueued. 202 if at least one job is new, 200 if
    every one already existed. More jobs than the server's batch limit: 413
    ``batch_too_large``; the quotas of a single enqueue apply, counting every job."""
    queue = await _task_queue(call, request.path_params["queue"])
    settings = call.state.settings
    body = decode_json(await read_body(request, settings.max_body_bytes), BatchBody)
    if len(body.jobs) > settings.max_batch:
        raise ApiError(
            413,
            "batch_too_large",
            f"{len(body.jobs)} jobs in one batch; the limit is {settings.max_batch}",
        )
    if not body.jobs:
        raise ApiError(400, "empty_batch", "jobs must hold at least one job", path="$.jobs")
    requests = [_to_request(call, queue, job, f"$.jobs[{i}]") for i, job in enumerate(body.jobs)]
    results = await _enqueue(request, call, requests)
    status = 202 if any(not r.deduplicated for r in results) else 200
    return json_response(BatchResult(jobs=results), status)


async def _job(call: Call, queue: str, job_id: str) -> streamq.Job:
    await call.state.require_queue(queue)
    check_job_id(job_id)
    job = await call.app.job(queue, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id!r} in queue {queue!r}")
    return job


def job_view(job: streamq.Job, *, redacted: bool = False) -> JobView:
    """The job as the API shows it; ``redacted`` (a ``meta`` reader) leaves out the payload,
    result, error and tags (which may come from payload fields)."""
    view = msgspec.convert(job, JobView, from_attributes=True)
    hidden: dict[str, Any] = (
        {"payload": None, "result": None, "error": None, "tags": []} if redacted else {}
    )
    return msgspec.structs.replace(view, links=job_links(job.queue, job.id), **hidden)


@operation.get(
    "/v1/queues/{queue}/jobs/{id}",
    summary="Read a job",
    responses={200: JobView},
    meta_ok=True,
    errors=(400, 404, 503),
)
async def get_job(request: Request, call: Call) -> Response:
    """State, progress, attempts, result or error, and timestamps (epoch seconds). A token
    with only ``meta`` on the queue sees no payload, result or error."""
    job = await _job(call, request.path_params["queue"], request.path_params["id"])
    return json_response(job_view(job, redacted=not call.sees_payloads(job.queue)))


@operation(
    "DELETE",
    "/v1/queues/{queue}/jobs/{id}",
    summary="Cancel a job",
    scope="write",
    responses={200: CancelResult},
    errors=(400, 404, 409, 503),
    tags=("jobs",),
)
async def cancel_job(request: Request, call: Call) -> Response:
    """A queued or scheduled job never runs; an active one has its handler cancelled.
    409 ``not_cancellable`` if the job already finished."""
    queue, job_id = request.path_params["queue"], request.path_params["id"]
    job = await _job(call, queue, job_id)
    if job.state in TERMINAL:
        raise ApiError(409, "not_cancellable", f"job {job_id!r} already ended ({job.state})")
    cancelled = await call.app.cancel(queue, job_id)
    state = await call.app.handle(queue, job_id).state()
    return json_response(CancelResult(id=job_id, queue=queue, cancelled=cancelled, state=state))
