"""01's admin endpoints, by the plans' queue names (``wallet-operations``, ...), admin scope:

- ``GET /api/v1/admin/queues/stats``: waiting, active, completed, failed, delayed per queue;
- ``POST /api/v1/admin/queues/{queueName}/pause`` and ``/resume``;
- ``GET /api/v1/admin/maintenance``: the maintenance schedules and their kept runs.

The same operations exist in the generic API under ``/v1/queues/{queue}`` (real queue names).
"""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import Response

from processors.api.requests import require_queues, runtime
from processors.api.schemas import (
    AdminQueuesStats,
    AdminQueueStats,
    MaintenanceList,
    MaintenanceView,
    QueuePaused,
)
from processors.config import JOBS, QUEUES
from processors.jobs.maintenance import maintenance_runs
from processors.runtime import Runtime
from server import ApiError, Call, OperationTable, bound_handler, json_response

__all__ = ["operation"]

TAGS = ("admin",)
# The handlers check (or filter by) the queues they act on.
operation = OperationTable(scope="admin", queue_filtered=True, tags=TAGS)
MAINTENANCE = ("cleanup-old-cache", "refresh-token-metadata")


def _queue(rt: Runtime, name: str) -> str:
    """The real queue of one of the plans' queue names (its real name is accepted too)."""
    for logical in QUEUES:
        if name in (logical, rt.queue(logical)):
            return rt.queue(logical)
    raise ApiError(404, "unknown_queue", f"no queue {name!r}", known=list(QUEUES))


@operation.get(
    "/api/v1/admin/queues/stats",
    summary="Job counts of every queue",
    responses={200: AdminQueuesStats},
)
async def admin_queue_stats(request: Request, call: Call) -> Response:
    """By the plans' queue names; ``completed`` and ``failed`` count since the queue began
    (failed: jobs that went to the dead letters)."""
    rt = await runtime(call)
    out: dict[str, AdminQueueStats] = {}

    async def one(logical: str) -> None:
        s = await rt.app.stats(rt.queue(logical))
        out[logical] = AdminQueueStats(
            queue=s.queue,
            waiting=s.waiting,
            active=s.active,
            completed=s.totals.get("completed", 0),
            failed=s.totals.get("dead", 0),
            delayed=s.delayed,
            dead=s.dead,
            paused=s.paused,
            workers=s.workers,
        )

    async with anyio.create_task_group() as tg:
        for logical in QUEUES:
            if call.allows("admin", rt.queue(logical)):
                tg.start_soon(one, logical)
    return json_response(AdminQueuesStats(queues={q: out[q] for q in QUEUES if q in out}))


async def _set_paused(request: Request, call: Call, paused: bool) -> Response:
    rt = await runtime(call)
    name = request.path_params["queueName"]
    queue = _queue(rt, name)
    require_queues(call, "admin", [queue])
    if paused:
        await rt.app.pause(queue)
    else:
        await rt.app.resume(queue)
    return json_response(QueuePaused(queue_name=name, queue=queue, paused=paused))


_pausing = operation.preset(responses={200: QueuePaused}, errors=(404,))
_pausing.post(
    "/api/v1/admin/queues/{queueName}/pause",
    summary="Pause a queue (running jobs finish; no new ones start)",
)(bound_handler(_set_paused, "admin_pause_queue", paused=True))
_pausing.post("/api/v1/admin/queues/{queueName}/resume", summary="Resume a paused queue")(
    bound_handler(_set_paused, "admin_resume_queue", paused=False)
)


@operation.get(
    "/api/v1/admin/maintenance",
    summary="The maintenance schedules and their last runs",
    queue_filtered=False,  # every queue's maintenance: the scope must cover them all
    responses={200: MaintenanceList},
)
async def admin_maintenance(request: Request, call: Call) -> Response:
    """``cleanup-old-cache`` and ``refresh-token-metadata``: schedule, and the kept completed
    and failed runs (the plans' removeOnComplete / removeOnFail), newest first."""
    rt = await runtime(call)
    views = []
    for name in MAINTENANCE:
        spec = JOBS[name]
        views.append(
            MaintenanceView(
                name=name,
                queue=rt.queue(spec.queue),
                cron=spec.cron,
                every=spec.every,
                keep_completed=spec.keep_completed or 0,
                keep_failed=spec.keep_failed or 0,
                completed=await maintenance_runs(rt, name, "completed"),
                failed=await maintenance_runs(rt, name, "failed"),
            )
        )
    return json_response(MaintenanceList(schedules=views))
