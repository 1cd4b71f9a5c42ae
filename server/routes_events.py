"""Server-sent-event endpoints: one job's progress until it ends, or a whole queue, live.

Resuming: the ``Last-Event-ID`` header (sent by EventSource on reconnect) or the
``last_event_id`` query parameter (for the first connection, which EventSource cannot give
headers) names the last entry seen; the stream continues right after it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.context import Call, check_entry_id, check_job_id
from server.errors import ApiError
from server.routing import EVENT_STREAM, OperationTable, Param
from server.schemas import ENTRY_ID_PATTERN
from server.sse import EventStreamResponse, entry_id_at
from server.streams import follow

operation = OperationTable()

_RESUME_PARAMS = (
    Param(
        "Last-Event-ID",
        "header",
        {"type": "string", "pattern": ENTRY_ID_PATTERN},
        "Resume after this event id.",
    ),
    Param(
        "last_event_id",
        "query",
        {"type": "string", "pattern": ENTRY_ID_PATTERN},
        "Resume after this event id (for clients that cannot send headers).",
    ),
)


# Both streams: SSE, resumable, readable with a ``meta`` scope.
_event_stream = operation.preset(
    responses={200: EVENT_STREAM},
    meta_ok=True,
    params=_RESUME_PARAMS,
    errors=(400, 404, 503),
    tags=("events",),
)


def _resume_from(request: Request) -> str | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or raw == "":
        return None
    return check_entry_id(raw.strip(), "Last-Event-ID")


async def _open(call: Call, queue: str, after: str | None, job: str | None) -> Response:
    """Takes an SSE slot, subscribes before the response starts (so Redis errors are still a
    proper HTTP error), and hands both to the response to release."""
    state = call.state
    key = call.caller
    state.slots.acquire(key)
    try:
        sub = await state.hub.subscribe(queue, job=job)
    except BaseException:
        state.slots.release(key)
        raise

    def close() -> None:
        state.hub.unsubscribe(sub)
        state.slots.release(key)

    chunks = follow(
        state.hub,
        sub,
        queue,
        after,
        job=job,
        heartbeat=state.settings.heartbeat_seconds,
        redis_slots=state.redis_slots,
        redacted=not call.sees_payloads(queue),
    )
    return EventStreamResponse(chunks, on_close=close)


@_event_stream.get("/v1/queues/{queue}/jobs/{id}/events", summary="Follow one job's events")
async def job_events(request: Request, call: Call) -> Response:
    """Every event of the job from its creation (or after ``Last-Event-ID``): ``queued``,
    ``active``, each ``progress``, then ``completed``, ``dead`` or ``cancelled``, after which
    the stream ends. A comment line is sent as a heartbeat when nothing happens."""
    queue, job_id = request.path_params["queue"], request.path_params["id"]
    await call.state.require_queue(queue)
    check_job_id(job_id)
    after = _resume_from(request)
    job = await call.app.job(queue, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id!r} in queue {queue!r}")
    if after is None and job.first_event:
        # From the millisecond of the job's first event: no scan through older history.
        after = entry_id_at(int(job.first_event.partition("-")[0]))
    if after is None:
        margin = call.state.settings.job_history_margin_seconds
        created = job.created_at or 0.0
        after = entry_id_at(max(0, int((created - margin) * 1000)))
    return await _open(call, queue, after, job_id)


@_event_stream.get("/v1/queues/{queue}/events", summary="Follow a queue's events")
async def queue_events(request: Request, call: Call) -> Response:
    """Every event of the queue from now (or after ``Last-Event-ID``), until the client
    leaves. Event ids are events-stream entry ids."""
    queue = request.path_params["queue"]
    await call.state.require_queue(queue)
    return await _open(call, queue, _resume_from(request), None)
