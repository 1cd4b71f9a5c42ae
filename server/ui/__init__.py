"""The web dashboard at ``/ui``: server-rendered pages over the JSON API, live through the
server's shared event feeds, with vendored static files only (no CDN, no build step).

``install(starlette, state)`` is all ``server.app`` calls: it mounts the pages, the static
files and ``/ui/api`` (the API as the pages' scripts call it), and redirects ``/`` to ``/ui``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles

from server.context import ServerState, server_state
from server.errors import ApiError
from server.sse import EventStreamResponse
from server.ui.api import ApiBridge
from server.ui.live import Overview, SeriesTracker, live_stream
from server.ui.pages import (
    dead_letters_page,
    job_page,
    login_page,
    logout,
    overview_page,
    queue_page,
    schedules_page,
    workers_page,
)
from server.ui.session import SecurityHeaders, principal_for

__all__ = ["install", "routes"]


async def _root(request: Request) -> Response:
    return RedirectResponse("/ui", 307)


async def _live(request: Request) -> Response:
    """The overview's live stream; it counts against the caller's event-stream limit."""
    principal = principal_for(request)  # ApiError 401/403 before the stream starts
    if not principal.allows_some("meta"):
        raise ApiError(403, "insufficient_scope", "this token may read no queue")
    state = server_state(request)
    overview = request.app.state.ui_overview
    state.slots.acquire(principal.key)
    return EventStreamResponse(
        live_stream(state, overview, visible=lambda queue: principal.allows("meta", queue)),
        on_close=lambda: state.slots.release(principal.key),
    )


def routes() -> list[BaseRoute]:
    static = StaticFiles(directory=str(files("server.ui") / "static"))
    pages = Router(
        routes=[
            Route("/", overview_page),
            Route("/live", _live),
            Route("/queues/{queue}", queue_page),
            Route("/queues/{queue}/jobs/{id}", job_page),
            Route("/dead-letters", dead_letters_page),
            Route("/schedules", schedules_page),
            Route("/workers", workers_page),
            Route("/login", login_page, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Mount("/static", app=static),
            Mount("/api", app=ApiBridge()),
        ],
        redirect_slashes=True,
    )
    return [
        Route("/", _root, include_in_schema=False),
        Route("/ui", _ui_root),
        Mount("/ui", app=SecurityHeaders(pages)),
    ]


async def _ui_root(request: Request) -> Response:
    return RedirectResponse("/ui/", 307)


def install(starlette: Starlette, state: ServerState) -> None:
    """Gives the server what the dashboard keeps: the per-minute series (fed by the rate
    samples the server takes anyway, and by each queue's event feed for durations, while the
    server runs) and the overview snapshot shared by open pages."""
    tracker = SeriesTracker(app=state.app)
    state.rates = tracker
    state.metrics.rates = tracker
    starlette.state.ui_overview = Overview(state)
    serve = starlette.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Any]:
        async with serve(app) as value:
            try:
                yield value
            finally:  # the durations' feed subscriptions end with the server, not the app
                tracker.durations.close()

    starlette.router.lifespan_context = lifespan
