"""streamq's HTTP server: the REST job API, server-sent events, /metrics, health and docs.

``create_app(settings, app)`` builds the Starlette application; ``serve(app_or_spec, host,
port, settings)`` runs it under uvicorn (what ``streamq serve`` calls).
"""

from __future__ import annotations

from server.app import create_app
from server.context import server_state
from server.main import run_server, running_server, serve, serve_async
from server.routing import Operation, OperationTable, Param
from server.settings import ServerSettings, SettingsError

__all__ = [
    "Operation",
    "OperationTable",
    "Param",
    "ServerSettings",
    "SettingsError",
    "create_app",
    "run_server",
    "running_server",
    "serve",
    "serve_async",
    "server_state",
]
