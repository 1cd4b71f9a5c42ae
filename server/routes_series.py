"""``GET /v1/series``: completed, failed, dead and enqueued jobs per interval, and wait and
run times, per queue and for all of them together.

Counted by this server: the counts from the queues' running totals, which it samples anyway for
rates, the times from each queue's events as its shared event feed reads them (see
``server.ui.live``). Kept in its memory for a day, so they start empty when the server starts,
and each server process counts its own.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from server.context import Call, json_response
from server.routing import OperationTable, Param
from server.ui.live import SeriesTracker

operation = OperationTable()


class Series(msgspec.Struct, frozen=True, kw_only=True):
    """Bucket start times (epoch seconds), one count per bucket for each kind, and the median
    and 95th percentile of wait and run times per bucket (seconds, within 9 %; null where no
    job started or finished)."""

    t: list[float]
    completed: list[float]
    failed: list[float]
    dead: list[float]
    enqueued: list[float]
    wait_p50: list[float | None]
    wait_p95: list[float | None]
    run_p50: list[float | None]
    run_p95: list[float | None]


class QueueSeries(msgspec.Struct, frozen=True, kw_only=True):
    hour: Series
    day: Series


class SeriesList(msgspec.Struct, frozen=True, kw_only=True):
    """Per queue, and ``all``: the queues listed together (times over all their jobs)."""

    queues: dict[str, QueueSeries]
    all: QueueSeries | None = None


@operation.get(
    "/v1/series",
    summary="Jobs per interval",
    responses={200: SeriesList},
    params=(Param("queue", "query", {"type": "string"}, "Only this queue."),),
    errors=(404, 503),
    meta_ok=True,
    queue_filtered=True,
    tags=("queues",),
)
async def job_series(request: Request, call: Call) -> Response:
    """For each queue, the jobs completed, failed, dead and enqueued per minute over the last
    hour (`hour`) and per 15 minutes over the last day (`day`), with the median (`_p50`) and
    95th percentile (`_p95`) of wait time (from ready to started: enqueued, due, retried or
    reclaimed, until a worker took it) and run time (from started to completed, failed or
    cancelled), in seconds, per interval, as measured by this server since it started. `all`
    is the queues listed taken together. The server follows the events of its app's queues,
    and of any other queue while jobs move through it (at most 32 at once): jobs that became
    ready before it followed a queue have no wait time; a delayed job's wait starts when a
    worker promotes it."""
    queue = request.query_params.get("queue")
    names = [await call.state.require_queue(queue)] if queue else await call.state.queue_names()
    names = [n for n in names if call.allows("meta", n)]  # a scoped token sees its queues
    tracker = call.state.rates
    if not isinstance(tracker, SeriesTracker):
        return json_response(SeriesList(queues={}))

    def of(queues: list[str]) -> QueueSeries:
        return QueueSeries(
            hour=msgspec.convert(tracker.series(queues, 60, 1), Series),
            day=msgspec.convert(tracker.series(queues, 24 * 60, 15), Series),
        )

    return json_response(SeriesList(queues={n: of([n]) for n in names}, all=of(names)))
