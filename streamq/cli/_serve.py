"""``streamq serve``: the HTTP server (REST API, SSE, /metrics, docs) for an application, with
the application's own endpoints (``http_operations`` of the contract in ``_contract``).

With ``_run``, the only command module that reaches the ``server`` package."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from streamq.cli._app_spec import default_app_spec
from streamq.cli._contract import Application, load_application
from streamq.cli._output import CliError, UsageError

if TYPE_CHECKING:
    from server import Operation


def server_installed() -> bool:
    """True if the HTTP server package can be imported."""
    try:
        import server  # noqa: F401
    except ImportError:
        return False
    return True


def operations_of(application: Application) -> Sequence[Operation]:
    """The application's endpoints, checked to be server Operations."""
    from server import Operation

    checked: list[Operation] = []
    for op in application.operations():
        if not isinstance(op, Operation):
            raise UsageError(
                f"http_operations of {application.spec!r} returned a {type(op).__name__}, "
                "not a server.Operation"
            )
        checked.append(op)
    return checked


def command(args: argparse.Namespace) -> int:
    spec = args.app or default_app_spec()
    application = load_application(spec)  # a clear error here, before the server starts
    if args.redis_url:
        os.environ["STREAMQ_REDIS_URL"] = args.redis_url
        application.app.use_redis_url(args.redis_url)
    try:
        from server import serve_async
    except ImportError as exc:
        raise CliError(f"the HTTP server is not installed (server): {exc}") from exc
    operations = operations_of(application)
    # uvicorn re-raises the stop signal once it has shut down; a requested stop is a clean exit.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    level = (args.log_level or "info").lower()

    async def serve() -> None:
        try:
            await serve_async(
                application.app,
                args.host,
                args.port,
                log_level=level,
                extra_operations=operations,
            )
        finally:
            await application.app.close()

    try:
        asyncio.run(serve())
    except ValueError as exc:  # the server's SettingsError: a refused bind, a bad setting
        raise CliError(str(exc)) from exc
    return 0
