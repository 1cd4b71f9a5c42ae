"""``GET /v1/schedules`` and running a recurring job now."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import streamq
from server.context import Call, json_response
from server.errors import ApiError
from server.routing import OperationTable, Param

# streamq has no public reader for a schedule's last tick yet; these name its keys.
from streamq._schedule import _jobs_key, _last_key

operation = OperationTable(errors=(404, 503), tags=("schedules",))


class ScheduleView(msgspec.Struct, frozen=True, kw_only=True):
    """A recurring job. Times are epoch seconds; ``last_run`` is the newest tick fired (null
    before a scheduler has seen the schedule), ``last_job`` the job it enqueued and
    ``last_state`` that job's state now (null once the job record has expired)."""

    id: str
    name: str
    queue: str
    cron: str | None
    every: float | None
    tz: str
    stored: bool
    overlap: bool
    next_run: float | None
    last_run: float | None = None
    last_job: str | None = None
    last_state: str | None = None


class ScheduleList(msgspec.Struct, frozen=True, kw_only=True):
    schedules: list[ScheduleView]


class ScheduleRun(msgspec.Struct, frozen=True, kw_only=True):
    schedule: str
    queue: str
    id: str


async def read_schedules(app: streamq.App, queue: str | None = None) -> list[ScheduleView]:
    schedules = await app.schedules(queue)
    if not schedules:
        return []
    pipe = app.redis.pipeline(transaction=False)
    for s in schedules:
        pipe.hget(_last_key(s.queue), s.id)
        pipe.hget(_jobs_key(s.queue), s.id)
    replies = await pipe.execute()
    now_ms = int(time.time() * 1000)
    views = []
    for i, s in enumerate(schedules):
        last, job = replies[2 * i], replies[2 * i + 1]
        last_ms = int(last) if last is not None else None
        last_job = job.decode() if job else None
        state = None
        if last_job:
            record = await app.job(s.queue, last_job)
            state = record.state if record else None
        views.append(
            ScheduleView(
                id=s.id,
                name=s.name,
                queue=s.queue,
                cron=s.cron,
                every=s.every,
                tz=s.tz or "UTC",
                stored=s.stored,
                overlap=s.overlap,
                next_run=s.next_after(max(now_ms, last_ms or 0)) / 1000,
                last_run=last_ms / 1000 if last_ms is not None else None,
                last_job=last_job,
                last_state=state,
            )
        )
    return views


@operation.get(
    "/v1/schedules",
    summary="List recurring jobs",
    responses={200: ScheduleList},
    params=(Param("queue", "query", {"type": "string"}, "Only the schedules of this queue."),),
)
async def list_schedules(request: Request, call: Call) -> Response:
    """Every recurring job of this server's application, declared in code or stored in
    Redis: its task name, queue, `cron` expression (in time zone `tz`) or `every` seconds,
    the next run, and the last run with the job it enqueued and that job's state."""
    queue = request.query_params.get("queue") or None
    if queue is not None:
        await call.state.require_queue(queue)
    return json_response(ScheduleList(schedules=await read_schedules(call.app, queue)))


@operation.post(
    "/v1/schedules/{queue}/{id}/run",
    summary="Run a recurring job now",
    scope="admin",
    responses={202: ScheduleRun},
)
async def run_schedule(request: Request, call: Call) -> Response:
    """Enqueues one run of the recurring job now, with its payload and priority, outside
    its timetable (the next scheduled tick still happens)."""
    queue, sid = request.path_params["queue"], request.path_params["id"]
    await call.state.require_queue(queue)
    found: Any = next((s for s in await call.app.schedules(queue) if s.id == sid), None)
    if found is None:
        raise ApiError(404, "schedule_not_found", f"no recurring job {sid!r} on {queue!r}")
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
    handle = await call.app.enqueue(
        found.name,
        found.payload,
        id=streamq.job_id("run-now", found.id, now),
        queue=queue,
        priority=found.priority,
    )
    return json_response(ScheduleRun(schedule=sid, queue=queue, id=handle.id), 202)
