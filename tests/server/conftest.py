"""Fixtures for the HTTP server tests: an App with a few tasks, served by uvicorn on a free
port in the test's own event loop (SSE needs a real socket)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from server_support import JSON, Served, register_tasks

from server import ServerSettings, create_app, running_server
from streamq import App


@pytest.fixture
def settings() -> ServerSettings:
    """Test settings: fast heartbeats, no rate limit unless a test asks."""
    return ServerSettings(heartbeat_seconds=0.5, rate_limit_per_second=0, stats_sample_seconds=0)


@pytest.fixture
def serve(
    app_factory: Callable[..., App], uniq: Callable[[str], str]
) -> Callable[..., contextlib.AbstractAsyncContextManager[Served]]:
    """``async with serve(settings) as s:`` a server on a fresh App with test tasks."""

    @contextlib.asynccontextmanager
    async def start(settings: ServerSettings, **app_options: Any) -> AsyncIterator[Served]:
        queue, other = uniq("srv"), uniq("srv-other")
        app = app_factory(**app_options)
        register_tasks(app, queue, other)
        asgi = create_app(settings, app)
        async with (
            running_server(asgi) as url,
            # Scripts and CLIs say their bodies are JSON, as the server asks of writes when it
            # runs without tokens; tests of that rule send their own Content-Type.
            httpx.AsyncClient(base_url=url, timeout=30, headers=JSON) as client,
        ):
            yield Served(url=url, app=app, queue=queue, other_queue=other, client=client)

    return start


@pytest.fixture
async def served(
    serve: Callable[..., contextlib.AbstractAsyncContextManager[Served]],
    settings: ServerSettings,
) -> AsyncIterator[Served]:
    async with serve(settings) as s:
        yield s
