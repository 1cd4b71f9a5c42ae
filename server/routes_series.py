"""``GET /v1/series``: completed, failed, dead and enqueued jobs per interval, per queue.

Counted by this server from the queues' running totals, which it samples anyway for rates
(see ``server.ui.live.SeriesTracker``): kept in its memory for a day, so they start empty when
the server starts, and each server process counts its own.
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
    """Bucket start times (epoch seconds) and one count per bucket for each kind."""

    t: list[float]
    completed: list[float]
    failed: list[float]
    dead: list[float]
    enqueued: list[float]


class QueueSeries(msgspec.Struct, frozen=True, kw_only=True):
    hour: Series
    day: Series


class SeriesList(msgspec.Struct, frozen=True, kw_only=True):
    queues: dict[str, QueueSeries]


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
    hour (`hour`) and per 15 minutes over the last day (`day`), as counted by this server
    since it started."""
    queue = request.query_params.get("queue")
    names = [await call.state.require_queue(queue)] if queue else await call.state.queue_names()
    names = [n for n in names if call.allows("meta", n)]  # a scoped token sees its queues
    tracker = call.state.rates
    out: dict[str, QueueSeries] = {}
    if isinstance(tracker, SeriesTracker):
        for name in names:
            out[name] = QueueSeries(
                hour=Series(**tracker.series(name, 60, 1)),
                day=Series(**tracker.series(name, 24 * 60, 15)),
            )
    return json_response(SeriesList(queues=out))
