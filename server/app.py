"""``create_app``: the Starlette application serving one streamq App.

Tests, ``streamq serve``, ``streamq run`` and the processors all build the server through
this factory; the processors add their own endpoints with ``extra_operations`` (declared like
ours, so they get auth, rate limits and an OpenAPI entry) or plain ``extra_routes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import redis.exceptions
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute

import streamq
from server import (
    routes_dead,
    routes_events,
    routes_jobs,
    routes_ops,
    routes_queues,
    routes_schedules,
    routes_search,
    routes_series,
    routes_system,
    routes_workers,
    ui,
)
from server.context import ServerState
from server.errors import (
    ApiError,
    handle_api_error,
    handle_broker_error,
    handle_client_disconnect,
    handle_exception_group,
    handle_http_exception,
    handle_unexpected,
)
from server.guard import GuardMiddleware
from server.metrics import RequestMetricsMiddleware
from server.openapi import build_openapi
from server.routes_jobs import is_public
from server.routing import Operation, build_routes
from server.settings import ServerSettings, check_tokens

log = logging.getLogger(__name__)

OPERATIONS: tuple[Operation, ...] = (
    *routes_jobs.operation.operations,
    *routes_search.operation.operations,
    *routes_ops.operation.operations,
    *routes_events.operation.operations,
    *routes_queues.operation.operations,
    *routes_dead.operation.operations,
    *routes_system.operation.operations,
    *routes_schedules.operation.operations,
    *routes_workers.operation.operations,
    *routes_series.operation.operations,
)


def create_app(
    settings: ServerSettings | None,
    app: streamq.App,
    *,
    extra_operations: Sequence[Operation] = (),
    extra_routes: Sequence[BaseRoute] = (),
    title: str = "streamq",
) -> Starlette:
    """The HTTP server for ``app``: the REST job API, SSE, /metrics, health and docs.

    ``settings`` None means ``ServerSettings.from_env()``. Raises SettingsError for a token
    shorter than 32 characters. The factory does not connect to
    Redis; the lifespan does (and a Redis that is down only makes /readyz fail). The
    streamq App stays the caller's to close. Handlers reach the App through
    ``server.context.server_state(request).app``.
    """
    settings = settings if settings is not None else ServerSettings.from_env()
    check_tokens(settings.tokens)
    state = ServerState(settings, app)
    operations = (*OPERATIONS, *extra_operations)
    task_queues = app.queues_of_tasks()
    state.openapi = build_openapi(
        operations,
        title=title,
        example_queue=task_queues[0] if task_queues else None,
        job_names=[name for name, task in app.tasks.items() if is_public(task)],
        max_batch=settings.max_batch,
        max_delay=settings.max_delay_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if not settings.auth_enabled:
            log.warning(
                "API authentication is off (no STREAMQ_API_TOKENS): serving loopback clients only"
            )
        try:
            await app.connect()
        except streamq.StreamqError as exc:
            log.error("cannot reach Redis at start (the server runs; /readyz says 503): %s", exc)
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_stats(state, stop), name="streamq-stats-sampler")
        try:
            yield
        finally:
            # Stopped by flag, not cancelled: a cancelled Redis call can strand its connection.
            stop.set()
            await sampler
            await state.readiness.close()
            await state.hub.close()

    starlette = Starlette(
        routes=[*build_routes(operations), *ui.routes(), *extra_routes],
        middleware=[
            Middleware(GuardMiddleware),
            Middleware(RequestMetricsMiddleware, metrics=state.metrics),
        ],
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: handle_http_exception,
            streamq.StreamqError: handle_broker_error,
            redis.exceptions.RedisError: handle_broker_error,
            ExceptionGroup: handle_exception_group,
            ClientDisconnect: handle_client_disconnect,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
    starlette.state.streamq = state
    ui.install(starlette, state)
    return starlette


async def _sample_stats(state: ServerState, stop: asyncio.Event) -> None:
    """Samples every queue's totals now and then, so rates exist before anyone asks."""
    interval = state.settings.stats_sample_seconds
    if interval <= 0:
        return
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
            return
        try:
            await state.metrics.refresh()
        except Exception as exc:  # a sampler must outlive a bad moment of Redis
            log.warning("stats sampling failed: %s", exc)


def close_streams(starlette: Starlette) -> asyncio.Future[None] | None:
    """Ends every open event stream (called on shutdown before connections are drained)."""
    state = getattr(starlette.state, "streamq", None)
    if isinstance(state, ServerState):
        return asyncio.ensure_future(state.hub.close())
    return None
