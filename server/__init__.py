"""streamq's HTTP server: the REST job API, server-sent events, /metrics, health and docs.

``create_app(settings, app)`` builds the Starlette application; ``serve(app_or_spec, host,
port, settings)`` runs it under uvicorn (what ``streamq serve`` calls). An application adds
its own endpoints as ``Operation``s (handlers take ``(request, call: Call)``, raise
``ApiError`` for 4xx, answer with ``json_response``) passed as ``extra_operations``, declared
through an ``OperationTable`` (whose defaults and presets carry what a group of routes shares)
and, where one body serves several routes, ``bound_handler``.
"""

from __future__ import annotations

from server.app import create_app
from server.context import Call, json_response, server_state
from server.errors import ApiError
from server.limits import read_json
from server.main import run_server, running_server, serve, serve_async
from server.routes_jobs import job_links
from server.routing import Operation, OperationTable, Param, bound_handler
from server.settings import ServerSettings, SettingsError

__all__ = [
    "ApiError",
    "Call",
    "Operation",
    "OperationTable",
    "Param",
    "ServerSettings",
    "SettingsError",
    "bound_handler",
    "create_app",
    "job_links",
    "json_response",
    "read_json",
    "run_server",
    "running_server",
    "serve",
    "serve_async",
    "server_state",
]
