"""Running the server under uvicorn: ``serve`` for ``streamq serve``, ``running_server`` for
tests and for ``streamq run`` (which shares one event loop with its workers).

Binding policy: with no API tokens configured the server refuses any address but loopback,
because it would otherwise hand every scope to anyone who can reach the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

import streamq
from server.app import close_streams, create_app
from server.connections import guarded_protocol
from server.context import ServerState
from server.routing import Operation
from server.settings import ServerSettings, SettingsError, is_loopback

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_SECONDS = 10


def check_bind(host: str, settings: ServerSettings) -> None:
    """Raises SettingsError when ``host`` is not loopback and no tokens are configured."""
    if not settings.auth_enabled and not is_loopback(host):
        raise SettingsError(
            f"refusing to listen on {host}: no API tokens are configured, so anyone who can "
            "reach this address would get full access. Set STREAMQ_API_TOKENS "
            "(e.g. 'secret:read+write+admin') or STREAMQ_API_TOKENS_FILE, or bind 127.0.0.1."
        )


def load_app(spec: str | streamq.App) -> streamq.App:
    """An App from ``module:attribute`` (attribute defaults to ``app``; it may be an App or
    a function returning one). Raises SettingsError when it cannot be found."""
    if isinstance(spec, streamq.App):
        return spec
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SettingsError(f"cannot import {module_name!r} for the app {spec!r}: {exc}") from exc
    target: Any = module
    for part in (attr or "app").split("."):
        target = getattr(target, part, None)
        if target is None:
            raise SettingsError(f"{module_name!r} has no attribute {attr or 'app'!r}")
    if not isinstance(target, streamq.App) and callable(target):
        target = target()
    if not isinstance(target, streamq.App):
        raise SettingsError(f"{spec!r} is {type(target).__name__}, not a streamq.App")
    return target


class StreamqServer(uvicorn.Server):
    """uvicorn, plus: end the event streams first on shutdown, so open SSE connections do
    not hold the graceful shutdown until its timeout."""

    def __init__(self, config: uvicorn.Config, asgi: Starlette) -> None:
        super().__init__(config)
        self.asgi = asgi

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        closing = close_streams(self.asgi)
        if closing is not None:
            await closing
        await super().shutdown(sockets)


def _log_config(log_level: str | None) -> dict[str, Any]:
    """uvicorn's logging set-up, plus the server's own loggers (the access log that names
    the caller, the audit trail, warnings) on the same console handler, at the same level
    (``streamq run`` asks for warnings only: request lines would drown its status lines)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    level = (log_level or "info").upper()
    config["loggers"]["server"] = {"handlers": ["default"], "level": level, "propagate": False}
    return config


def _config(
    asgi: Starlette, host: str, port: int, log_level: str | None, *, own_logging: bool = True
) -> uvicorn.Config:
    options: dict[str, Any] = {"log_config": _log_config(log_level) if own_logging else None}
    state = getattr(asgi.state, "streamq", None)
    settings = state.settings if isinstance(state, ServerState) else ServerSettings()
    return uvicorn.Config(
        asgi,
        host=host,
        port=port,
        lifespan="on",
        log_level=log_level,
        **options,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        server_header=False,
        # Our access log (server.access) names the caller; uvicorn's cannot.
        access_log=False,
        # Proxy headers are the server's to judge (server.auth.client_address): uvicorn's
        # default would believe X-Forwarded-For from any loopback peer.
        proxy_headers=False,
        http=guarded_protocol(
            max_connections=settings.max_connections,
            header_timeout=settings.header_timeout_seconds,
        ),
        timeout_keep_alive=max(1, round(settings.keep_alive_seconds)),
        # Past the cap uvicorn answers 503 to requests of connections it still holds.
        limit_concurrency=settings.max_connections + 1,
    )


async def serve_async(
    app: str | streamq.App,
    host: str | None = None,
    port: int | None = None,
    settings: ServerSettings | None = None,
    *,
    log_level: str | None = "info",
    extra_operations: Sequence[Operation] = (),
    extra_routes: Sequence[BaseRoute] = (),
) -> None:
    """Serves ``app`` until SIGINT/SIGTERM. Raises SettingsError for a refused bind address
    or an app spec that cannot be loaded (before anything listens)."""
    settings = settings if settings is not None else ServerSettings.from_env()
    host = host or settings.host
    port = settings.port if port is None else port
    check_bind(host, settings)
    owned = not isinstance(app, streamq.App)
    streamq_app = load_app(app)
    asgi = create_app(
        settings, streamq_app, extra_operations=extra_operations, extra_routes=extra_routes
    )
    server = StreamqServer(_config(asgi, host, port, log_level), asgi)
    try:
        await server.serve()
    finally:
        if owned:
            await streamq_app.close()


def serve(
    app: str | streamq.App,
    host: str | None = None,
    port: int | None = None,
    settings: ServerSettings | None = None,
    **options: Any,
) -> None:
    """Blocking ``serve_async``: what ``streamq serve`` calls (see ``serve_async``)."""
    asyncio.run(serve_async(app, host, port, settings, **options))


run_server = serve


@contextlib.asynccontextmanager
async def running_server(
    asgi: Starlette, host: str = "127.0.0.1", port: int = 0, log_level: str | None = "warning"
) -> AsyncIterator[str]:
    """Runs ``asgi`` under uvicorn in the current event loop; yields its base URL.

    With ``port=0`` the socket is bound first, so the free port is known without races.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio only turns Nagle off (TCP_NODELAY) on accepted sockets
    # whose proto says TCP, and with Nagle on every keep-alive response waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    bound_port = sock.getsockname()[1]
    # Embedded use: leave the host program's logging configuration alone.
    config = _config(asgi, host, bound_port, log_level, own_logging=False)
    server = StreamqServer(config, asgi)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    try:
        while not server.started:
            if task.done():
                task.result()  # startup failed: raise its error
                raise RuntimeError("uvicorn exited during startup")
            await asyncio.sleep(0.01)
        netloc = f"[{host}]" if ":" in host else host
        yield f"http://{netloc}:{bound_port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
