"""Listing and finding jobs through the queues' job index: a queue's jobs by state, name,
lane and time, the same across queues, and a job by id in any queue."""

from __future__ import annotations

import dataclasses
import math

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import streamq
from server.context import Call, check_job_id, json_response, query_int
from server.errors import ApiError
from server.routes_jobs import job_view
from server.routing import OperationTable, Param
from server.schemas import QUEUE_PATTERN, JobView
from streamq._index import MAX_EPOCH, MAX_LIMIT, STATES, JobQuery

# Listings and lookups: readable with a ``meta`` scope (which sees no payloads).
operation = OperationTable(meta_ok=True, errors=(400, 404, 503), tags=("jobs",))


class JobList(msgspec.Struct, frozen=True, kw_only=True):
    """A page of jobs, newest first; ``next`` is the cursor of the next page (null: done)."""

    jobs: list[JobView]
    next: str | None


_FILTERS = (
    Param("state", "query", {"type": "string", "enum": list(STATES)}, "Only jobs in this state."),
    Param(
        "name",
        "query",
        {"type": "string", "minLength": 1, "maxLength": 200},
        "Only jobs of this name.",
    ),
    Param(
        "lane",
        "query",
        {"type": "string", "enum": list(streamq.LANES)},
        "Only jobs of this priority lane.",
    ),
    Param(
        "tag",
        "query",
        {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^\S+$"},
        "Only jobs with this tag (given at enqueue, or a task's index field as "
        "`field:value`); such a listing is ordered by creation.",
    ),
    Param(
        "since",
        "query",
        {"type": "number", "minimum": 0, "maximum": MAX_EPOCH},
        "Epoch seconds: only jobs whose last state change (creation, when listing by name "
        "alone) is at or after this.",
    ),
    Param(
        "until",
        "query",
        {"type": "number", "minimum": 0, "maximum": MAX_EPOCH},
        "Epoch seconds: at or before.",
    ),
    Param(
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
        "At most this many jobs (a page may hold fewer while more follow).",
    ),
    Param(
        "cursor",
        "query",
        {"type": "string", "minLength": 1, "maxLength": 260},
        "The `next` of the previous page, with the same filters.",
    ),
)


def _seconds(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise ApiError(400, "invalid_parameter", f"{name} must be epoch seconds (a number >= 0)")
    return value


def _query(request: Request) -> JobQuery:
    params = request.query_params
    query = JobQuery(
        state=params.get("state"),
        name=params.get("name"),
        lane=params.get("lane"),
        since=_seconds(request, "since"),
        until=_seconds(request, "until"),
        tag=params.get("tag"),
    )
    try:
        return query.check()
    except streamq.InvalidJob as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from None


async def _page(call: Call, request: Request, queues: list[str]) -> Response:
    query = _query(request)
    limit = query_int(request, "limit", 50, 1, MAX_LIMIT)
    try:
        page = await call.app.list_jobs(
            queues,
            **dataclasses.asdict(query),
            limit=limit,
            cursor=request.query_params.get("cursor"),
        )
    except streamq.InvalidJob as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from None
    views = [job_view(j, redacted=not call.sees_payloads(j.queue)) for j in page.jobs]
    return json_response(JobList(jobs=views, next=page.next))


@operation.get(
    "/v1/queues/{queue}/jobs",
    summary="List a queue's jobs",
    responses={200: JobList},
    params=_FILTERS,
)
async def list_jobs(request: Request, call: Call) -> Response:
    """Jobs newest first (by last state change; by creation when filtered by name alone),
    read from the queue's job index: nothing is scanned. Page with `cursor`: a job that stays
    put is listed exactly once; one that changes state meanwhile is listed in its new state
    by listings that start after the change. A ``meta`` token sees no payload, result or
    error."""
    queue = await call.state.require_queue(request.path_params["queue"])
    return await _page(call, request, [queue])


@operation.get(
    "/v1/jobs",
    summary="List jobs across queues",
    responses={200: JobList},
    params=(
        Param(
            "queue",
            "query",
            {"type": "string", "pattern": QUEUE_PATTERN},
            "Only this queue (default: every queue the token may read).",
        ),
        *_FILTERS,
    ),
    queue_filtered=True,
)
async def search_jobs(request: Request, call: Call) -> Response:
    """As the per-queue listing, merged over every queue the token may read (or ``queue``)."""
    wanted = request.query_params.get("queue")
    if wanted is not None:
        queue = await call.state.require_queue(wanted)
        if not call.allows("meta", queue):
            raise ApiError(403, "insufficient_scope", f"this token cannot read queue {queue!r}")
        queues = [queue]
    else:
        queues = [q for q in await call.state.queue_names() if call.allows("meta", q)]
    return await _page(call, request, queues)


@operation.get(
    "/v1/jobs/{id}", summary="Find a job by id", responses={200: JobView}, queue_filtered=True
)
async def find_job(request: Request, call: Call) -> Response:
    """The job with this id in whichever queue (of those the token may read) holds it."""
    job_id = check_job_id(request.path_params["id"])
    queues = [q for q in await call.state.queue_names() if call.allows("meta", q)]
    job = await call.app.find_job(job_id, queues)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id!r} in any queue you may read")
    return json_response(job_view(job, redacted=not call.sees_payloads(job.queue)))


@operation.get(
    "/v1/queues/{queue}/jobs/{id}/logs",
    summary="Read a job's log",
    responses={200: streamq.JobLog},
    meta_ok=False,  # a log may hold what a payload does
)
async def get_job_logs(request: Request, call: Call) -> Response:
    """What the job's handler wrote with ``ctx.log``, oldest line first: at most the newest
    500 lines (128 KiB); ``dropped`` counts older lines no longer kept. The log lives as long
    as the job's record. Needs ``read`` on the queue (a ``meta`` token sees no logs)."""
    queue = await call.state.require_queue(request.path_params["queue"])
    job_id = check_job_id(request.path_params["id"])
    log = await call.app.job_logs(queue, job_id)
    if log is None:
        raise ApiError(404, "job_not_found", f"no job {job_id!r} in queue {queue!r}")
    return json_response(log)
