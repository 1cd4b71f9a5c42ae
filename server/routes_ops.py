"""Operations on jobs (admin): retry, promote, remove one job; the same for a list of ids or
everything a filter matches (bounded per request, resumable); drain and clean a queue."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import streamq
from server.context import Call, check_job_id, json_response
from server.errors import ApiError
from server.limits import decode_json
from server.routes_jobs import job_view
from server.routing import OperationTable, Param, bound_handler
from server.schemas import JobId, JobView, NumericPriority
from streamq._dropqueue import QueueDeletion
from streamq._index import MAX_EPOCH, STATES, JobQuery
from streamq._jobs import Outcome

operation = OperationTable(scope="admin", tags=("admin",))
# Jobs one request acts on at most when acting on a filter (within the request deadline);
# the answer's ``next`` resumes.
MAX_PER_REQUEST = 2000
MAX_CANCEL_PER_REQUEST = 200
Action = Literal["retry", "promote", "remove"]
BulkAction = Literal["cancel", "retry", "promote", "remove"]
# Epoch seconds as a JSON number, or as a string of one (what an HTML form gives).
Epoch = (
    Annotated[float, msgspec.Meta(ge=0, le=MAX_EPOCH)]
    | Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,12}(\.[0-9]{1,6})?$")]
)
State = Literal[
    "scheduled", "queued", "active", "completed", "retrying", "dead", "cancelled",
    "waiting-children",
]  # fmt: skip
assert set(State.__args__) == set(STATES)  # type: ignore[attr-defined]


class Filter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which jobs, as the listing's query parameters."""

    state: State | None = None
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    lane: streamq.Lane | None = None
    since: Epoch | None = None
    until: Epoch | None = None
    tag: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^\S+$")] | None = None


class ManyBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Either ``ids`` (at most 10,000) or a ``filter``; ``cursor`` resumes a filter's run."""

    ids: Annotated[list[JobId], msgspec.Meta(max_length=10_000)] | None = None
    filter: Filter | None = None
    cursor: Annotated[str, msgspec.Meta(min_length=1, max_length=260)] | None = None


class ManyResult(msgspec.Struct, frozen=True, kw_only=True):
    """``done`` jobs acted on; ``refused`` ids with the state that refused them; ``missing``
    ids with no record; ``next``: call again with this cursor to go on (null: finished)."""

    queue: str
    action: str
    done: int
    count: int  # the same as done (what the dashboard reads)
    refused: dict[str, str]
    missing: list[str]
    next: str | None


class CleanBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Removes finished jobs that finished more than ``older_than`` seconds ago."""

    older_than: Annotated[float, msgspec.Meta(ge=0, le=MAX_EPOCH)]
    state: Literal["completed", "dead", "cancelled"] | None = None


class CountResult(msgspec.Struct, frozen=True, kw_only=True):
    queue: str
    count: int


async def _one(request: Request, call: Call, action: Action) -> Response:
    queue = await call.state.require_queue(request.path_params["queue"])
    job_id = check_job_id(request.path_params["id"])
    app = call.app
    act = {"retry": app.retry, "promote": app.promote, "remove": app.remove}[action]
    try:
        await act(queue, job_id)
    except streamq.JobNotFound as exc:
        raise ApiError(404, "job_not_found", str(exc)) from None
    except streamq.JobStateConflict as exc:
        raise ApiError(409, "invalid_state", str(exc)) from None
    if action == "remove":
        return Response(status_code=204)
    job = await app.job(queue, job_id)
    if job is None:  # removed or expired in the meantime
        raise ApiError(404, "job_not_found", f"no job {job_id!r} in queue {queue!r}")
    return json_response(job_view(job))


def _one_operation(action: Action, summary: str, responses: dict[int, Any], doc: str) -> None:
    operation.post(
        f"/v1/queues/{{queue}}/jobs/{{id}}/{action}",
        summary=summary,
        responses=responses,
        errors=(400, 404, 409, 503),
    )(bound_handler(_one, f"{action}_job", doc, action=action))


_one_operation(
    "retry",
    "Retry a job",
    {200: JobView},
    """Puts a dead, cancelled or completed job back on its lane with fresh attempts; 409
    ``invalid_state`` for a job in any other state.""",
)
_one_operation(
    "promote",
    "Run a delayed job now",
    {200: JobView},
    "Moves a scheduled or retrying job onto its lane now; 409 ``invalid_state`` otherwise.",
)
_one_operation(
    "remove",
    "Remove a finished job",
    {204: None},
    """Deletes a completed, dead or cancelled job's record; 409 ``invalid_state`` for a job
    still waiting or running (cancel it first).""",
)


class PriorityBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The lane to move the job to (a lane name, or 1-10 as at enqueue)."""

    priority: streamq.Lane | NumericPriority


@operation.post(
    "/v1/queues/{queue}/jobs/{id}/priority",
    summary="Change a waiting job's priority",
    body=PriorityBody,
    responses={200: JobView},
    errors=(400, 404, 409, 422, 503),
)
async def set_job_priority(request: Request, call: Call) -> Response:
    """Moves a queued, scheduled or retrying job to another lane (a queued one to the back of
    it; a delayed one keeps its time); 409 ``invalid_state`` for an active or finished job."""
    queue = await call.state.require_queue(request.path_params["queue"])
    job_id = check_job_id(request.path_params["id"])
    body = decode_json(request.state.body, PriorityBody)
    try:
        await call.app.set_priority(queue, job_id, body.priority)
    except streamq.JobNotFound as exc:
        raise ApiError(404, "job_not_found", str(exc)) from None
    except streamq.JobStateConflict as exc:
        raise ApiError(409, "invalid_state", str(exc)) from None
    job = await call.app.job(queue, job_id)
    if job is None:  # finished and expired in the meantime
        raise ApiError(404, "job_not_found", f"no job {job_id!r} in queue {queue!r}")
    return json_response(job_view(job))


def _epoch(value: float | str | None) -> float | None:
    if value is None:
        return None
    seconds = float(value)
    if not 0 <= seconds <= MAX_EPOCH:
        raise ApiError(
            400, "invalid_parameter", f"since and until are epoch seconds in 0..{MAX_EPOCH}"
        )
    return seconds


def _selection(f: Filter) -> dict[str, Any]:
    """The filter as the listing's keyword arguments (epoch strings as numbers)."""
    query = JobQuery(
        state=f.state,
        name=f.name,
        lane=f.lane,
        since=_epoch(f.since),
        until=_epoch(f.until),
        tag=f.tag,
    )
    return dataclasses.asdict(query)


async def _cancel_many(call: Call, queue: str, body: ManyBody) -> Outcome:
    """Cancel has its own script (it stops running jobs too): one call per job."""
    outcome = Outcome()
    ids = list(body.ids or [])
    if body.filter is not None:
        f = body.filter
        page = await call.app.list_jobs(
            queue, **_selection(f), limit=MAX_CANCEL_PER_REQUEST, cursor=body.cursor
        )
        ids, outcome.next = [j.id for j in page.jobs], page.next
    for job_id in ids:
        job = await call.app.job(queue, job_id)
        if job is None:
            outcome.missing.append(job_id)
        elif job.finished:
            outcome.refused[job_id] = job.state
        elif await call.app.cancel(queue, job_id):
            outcome.done += 1
    return outcome


async def _many(request: Request, call: Call, action: BulkAction) -> Response:
    queue = await call.state.require_queue(request.path_params["queue"])
    body = decode_json(request.state.body, ManyBody)
    if (body.ids is None) == (body.filter is None):
        raise ApiError(400, "bad_request", "give ids or a filter (exactly one)")
    if action == "cancel":
        try:
            outcome = await _cancel_many(call, queue, body)
        except streamq.InvalidJob as exc:
            raise ApiError(400, "invalid_parameter", str(exc)) from None
    elif body.ids is not None:
        outcome = await call.app.operate(queue, action, body.ids)
    else:
        f = body.filter
        assert f is not None
        try:
            outcome = await call.app.operate_matching(
                queue, action, **_selection(f), cursor=body.cursor, max_jobs=MAX_PER_REQUEST
            )
        except streamq.InvalidJob as exc:
            raise ApiError(400, "invalid_parameter", str(exc)) from None
    result = ManyResult(
        queue=queue, action=action, count=outcome.done, **dataclasses.asdict(outcome)
    )
    return json_response(result)


def _many_operation(action: BulkAction, summary: str, what: str) -> None:
    doc = (
        f"{what} for the given ``ids``, or for every job a ``filter`` matches: at most "
        f"{MAX_PER_REQUEST} per request, in batches of a few ms of Redis each; call again "
        "with ``cursor`` set to the answer's ``next`` until it is null."
    )
    operation.post(
        f"/v1/queues/{{queue}}/jobs:{action}",
        summary=summary,
        body=ManyBody,
        responses={200: ManyResult},
        errors=(400, 404, 422, 503),
    )(bound_handler(_many, f"{action}_jobs", doc, action=action))


_many_operation("cancel", "Cancel many jobs", "Cancels waiting and running jobs")
_many_operation("retry", "Retry many jobs", "Retries dead, cancelled or completed jobs")
_many_operation("promote", "Promote many jobs", "Runs scheduled or retrying jobs now")
_many_operation("remove", "Remove many jobs", "Removes finished jobs")


@operation.post(
    "/v1/queues/{queue}:drain",
    summary="Drain a queue",
    responses={200: CountResult},
    errors=(404, 503),
)
async def drain_queue(request: Request, call: Call) -> Response:
    """Removes every waiting job (queued, scheduled, retrying); active jobs run on."""
    queue = await call.state.require_queue(request.path_params["queue"])
    return json_response(CountResult(queue=queue, count=await call.app.drain(queue)))


@operation.post(
    "/v1/queues/{queue}:clean",
    summary="Clean a queue",
    body=CleanBody,
    responses={200: CountResult},
    errors=(400, 404, 422, 503),
)
async def clean_queue(request: Request, call: Call) -> Response:
    """Removes finished jobs (all, or of one ``state``) older than ``older_than`` seconds."""
    queue = await call.state.require_queue(request.path_params["queue"])
    body = decode_json(request.state.body, CleanBody)
    count = await call.app.clean(queue, body.older_than, body.state)
    return json_response(CountResult(queue=queue, count=count))


# Batches of jobs one request deletes at most (each a few ms of Redis); more: call again.
MAX_DELETE_BATCHES = 50


@operation(
    "DELETE",
    "/v1/queues/{queue}",
    summary="Delete a queue",
    responses={200: QueueDeletion},
    params=(
        Param(
            "force",
            "query",
            {"type": "boolean", "default": False},
            "Delete even while live workers serve the queue (it is paused first).",
        ),
    ),
    errors=(400, 404, 409, 503),
)
async def delete_queue(request: Request, call: Call) -> Response:
    """Deletes the queue and everything in it (jobs, logs, lanes, dead letters, index,
    schedules, events) and its registry entry, in batches of a few ms of Redis each; at most
    5,000 jobs per request: while ``done`` is false, call again. 409 ``queue_in_use`` while
    live workers serve it, unless ``force=true``."""
    queue = await call.state.require_queue(request.path_params["queue"])
    raw = request.query_params.get("force", "false")
    if raw not in ("true", "false", "1", "0"):
        raise ApiError(400, "invalid_parameter", "force is true or false")
    try:
        deletion = await call.app.delete_queue(
            queue, force=raw in ("true", "1"), max_batches=MAX_DELETE_BATCHES
        )
    except streamq.QueueInUse as exc:
        raise ApiError(409, "queue_in_use", str(exc)) from None
    if deletion.done:
        call.state.forget_queue(queue)
    return json_response(deletion)
