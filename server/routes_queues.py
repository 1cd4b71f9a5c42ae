"""Queue endpoints: list, detail (counts, lanes, rates, accepted jobs), pause and resume."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

import streamq
from server.context import Call, json_response
from server.routes_jobs import is_public
from server.routing import OperationTable
from server.schemas import JobType, LaneView, PauseResult, QueueList, QueueView, StateCounts

operation = OperationTable(tags=("queues",))
# Pause and resume: admin calls answering the queue's new state.
_pausing = operation.preset(
    scope="admin", responses={200: PauseResult}, errors=(404, 503), tags=("admin",)
)


def job_types(app: streamq.App, queue: str) -> list[JobType]:
    """The job names ``queue`` accepts from clients, each with its payload's JSON schema."""
    return [
        JobType(
            name=task.name,
            priority=task.priority,
            max_attempts=task.max_attempts,
            timeout=task.timeout,
            payload_schema=task.json_schema(),
        )
        for task in sorted(app.tasks.values(), key=lambda t: t.name)
        if task.queue == queue and is_public(task)
    ]


async def queue_view(call: Call, queue: str, now_ms: int | None = None) -> QueueView:
    """The queue as the read model sees it (the same figures ``streamq inspect`` shows)."""
    async with call.state.metrics.stats_slots:  # the server-wide limit on stats reads
        stats = await streamq.ReadModel(call.app.broker).summary(queue, now_ms)
    return QueueView(
        name=queue,
        paused=stats.paused,
        counts=StateCounts(
            waiting=stats.waiting, active=stats.active, delayed=stats.delayed, dead=stats.dead
        ),
        lanes={lane: LaneView(depth=s.depth, pending=s.pending) for lane, s in stats.lanes.items()},
        totals=dict(stats.totals),
        rates=stats.rates,
        workers=stats.workers,
        oldest_waiting_age=stats.oldest_waiting_age,
        jobs=job_types(call.app, queue),
    )


@operation.get(
    "/v1/queues",
    summary="List queues",
    responses={200: QueueList},
    meta_ok=True,
    queue_filtered=True,
    errors=(503,),
)
async def list_queues(request: Request, call: Call) -> Response:
    """Every queue in the registry (and every queue this server has tasks for), with counts
    per state and lane, per-second rates, and the jobs each accepts. Only the queues the
    token may read (or ``meta``-read) are listed."""
    names = [q for q in await call.state.queue_names() if call.allows("meta", q)]
    # One clock reading for the whole list: every queue's rates cover the same minute.
    now_ms = await streamq.ReadModel(call.app.broker).server_ms()
    views = await asyncio.gather(*(queue_view(call, q, now_ms) for q in names))
    return json_response(QueueList(queues=list(views)))


@operation.get(
    "/v1/queues/{queue}",
    summary="Read a queue",
    responses={200: QueueView},
    meta_ok=True,
    errors=(404, 503),
)
async def get_queue(request: Request, call: Call) -> Response:
    """Counts per state and lane, events per second over the last minute, workers, the age of
    the oldest waiting job, and the job names the queue accepts with their payload schemas."""
    queue = await call.state.require_queue(request.path_params["queue"])
    return json_response(await queue_view(call, queue))


@_pausing.post("/v1/queues/{queue}/pause", summary="Pause a queue")
async def pause_queue(request: Request, call: Call) -> Response:
    """Workers stop taking new jobs from the queue; jobs can still be enqueued."""
    return await _set_paused(request, call, True)


@_pausing.post("/v1/queues/{queue}/resume", summary="Resume a queue")
async def resume_queue(request: Request, call: Call) -> Response:
    """Workers take jobs from the queue again."""
    return await _set_paused(request, call, False)


async def _set_paused(request: Request, call: Call, paused: bool) -> Response:
    queue = await call.state.require_queue(request.path_params["queue"])
    await (call.app.pause if paused else call.app.resume)(queue)
    return json_response(PauseResult(queue=queue, paused=paused))
