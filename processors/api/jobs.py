"""01's job API by job id alone (the application knows its queues), the active jobs of a
wallet, and ``/health/queues``:

- ``GET /api/v1/jobs/{id}/status``, ``/result``, ``/progress``;
- ``GET /api/v1/jobs/wallet/{address}/active``;
- ``GET /health/queues``: counts per queue, Redis, and an overall healthy/degraded/unhealthy.
"""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import Response

import streamq
from processors.api.requests import checked_job_id, checked_wallets, events_url, runtime
from processors.api.schemas import (
    ActiveJobs,
    JobProgressView,
    JobResultView,
    JobStatusView,
    QueueHealth,
    QueuesHealth,
)
from processors.jobs.wallet_index import active_wallet_jobs
from processors.runtime import Runtime
from server import ApiError, Call, OperationTable, json_response

__all__ = ["find_job", "operation", "status_view"]

TAGS = ("application jobs",)
operation = OperationTable(queue_filtered=True, tags=TAGS)
_by_id = operation.preset(errors=(400, 404))


async def find_job(rt: Runtime, job_id: str, queues: list[str] | None = None) -> streamq.Job | None:
    """The job with this id in any of ``queues`` (default: the deployment's)."""
    found: list[streamq.Job] = []

    async def look(queue: str) -> None:
        job = await rt.app.job(queue, job_id)
        if job is not None:
            found.append(job)

    async with anyio.create_task_group() as tg:
        for q in rt.queues() if queues is None else queues:
            tg.start_soon(look, q)
    return max(found, key=lambda j: j.created_at or 0.0) if found else None


async def _job(request: Request, call: Call) -> streamq.Job:
    rt = await runtime(call)
    job_id = checked_job_id(request.path_params["id"])
    # Only the queues the caller may read: another queue's job is as unknown as a missing one.
    job = await find_job(rt, job_id, [q for q in rt.queues() if call.allows("read", q)])
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id!r} (never queued, or expired)")
    return job


def status_view(job: streamq.Job) -> JobStatusView:
    return JobStatusView(
        job_id=job.id,
        queue=job.queue,
        name=job.name,
        state=job.state,
        progress=job.progress,
        progress_message=job.progress_message,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        request_id=job.request_id,
        created_at=job.created_at or 0.0,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        events_url=events_url(job.queue, job.id),
    )


@_by_id.get(
    "/api/v1/jobs/{id}/status",
    summary="A job's state, progress and attempts",
    responses={200: JobStatusView},
)
async def job_status(request: Request, call: Call) -> Response:
    return json_response(status_view(await _job(request, call)))


@_by_id.get(
    "/api/v1/jobs/{id}/result",
    summary="A job's result (202 while it runs)",
    responses={200: JobResultView, 202: JobResultView},
)
async def job_result(request: Request, call: Call) -> Response:
    """200 with ``result`` once completed, or with ``error`` once dead or cancelled; 202 with
    only the state while the job is still on its way."""
    job = await _job(request, call)
    view = JobResultView(job_id=job.id, state=job.state, result=job.result, error=job.error)
    return json_response(view, 200 if job.finished else 202)


@_by_id.get(
    "/api/v1/jobs/{id}/progress", summary="A job's progress", responses={200: JobProgressView}
)
async def job_progress(request: Request, call: Call) -> Response:
    job = await _job(request, call)
    return json_response(
        JobProgressView(
            job_id=job.id, state=job.state, progress=job.progress, message=job.progress_message
        )
    )


@operation.get(
    "/api/v1/jobs/wallet/{address}/active",
    summary="A wallet's unfinished jobs",
    responses={200: ActiveJobs},
    errors=(400,),
)
async def wallet_active_jobs(request: Request, call: Call) -> Response:
    rt = await runtime(call)
    [wallet] = checked_wallets([request.path_params["address"]])
    jobs = [j for j in await active_wallet_jobs(rt, wallet) if call.allows("read", j.queue)]
    return json_response(ActiveJobs(wallet_address=wallet, jobs=[status_view(j) for j in jobs]))


@operation.get(
    "/health/queues",
    summary="Health of the application's queues",
    responses={200: QueuesHealth, 503: QueuesHealth},
    tags=("health",),
)
async def queues_health(request: Request, call: Call) -> Response:
    """``unhealthy`` (503) when Redis does not answer; ``degraded`` when a queue has no live
    worker, is paused or has dead letters; else ``healthy``."""
    rt = await runtime(call) if await call.app.ping() else None
    if rt is None:
        return json_response(QueuesHealth(overall_status="unhealthy", redis=False, queues={}), 503)
    queues: dict[str, QueueHealth] = {}
    degraded = False
    for q in rt.queues():
        if not call.allows("read", q):
            continue
        s = await call.app.stats(q)
        queues[q] = QueueHealth(
            waiting=s.waiting,
            active=s.active,
            delayed=s.delayed,
            dead=s.dead,
            workers=s.workers,
            paused=s.paused,
            oldest_waiting_seconds=s.oldest_waiting_age,
        )
        degraded = degraded or s.workers == 0 or s.paused or s.dead > 0
    return json_response(
        QueuesHealth(
            overall_status="degraded" if degraded else "healthy", redis=True, queues=queues
        )
    )
