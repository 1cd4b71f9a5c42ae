"""Operational endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document and
the docs page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.context import Call, json_response
from server.docs import docs_response
from server.errors import ApiError
from server.metrics import CONTENT_TYPE
from server.routing import OperationTable
from server.schemas import Health

# Probes, docs and metrics: most need no token.
operation = OperationTable(scope=None, tags=("system",))


@operation.get("/healthz", summary="Liveness", responses={200: Health})
async def healthz(request: Request, call: Call) -> Response:
    """200 while the process serves requests; does not touch Redis."""
    return json_response(Health(status="ok"))


@operation.get("/readyz", summary="Readiness", probe=True, responses={200: Health}, errors=(503,))
async def readyz(request: Request, call: Call) -> Response:
    """200 when Redis answers a PING within the request deadline, else 503 ``not_ready``.
    The answer may be up to a second old (one PING serves every caller meanwhile)."""
    if not await call.state.readiness.ready():
        raise ApiError(503, "not_ready", "Redis does not answer", headers={"Retry-After": "1"})
    return json_response(Health(status="ready", redis=True))


@operation.get(
    "/metrics",
    summary="Prometheus metrics",
    scope="read",
    responses={200: (CONTENT_TYPE, "Prometheus text exposition format")},
    rate_limited=False,
    probe=True,
    meta_ok=True,
    bounded=False,  # bounds its own Redis reads: answers with streamq_redis_up 0 instead
)
async def metrics(request: Request, call: Call) -> Response:
    """The server's metrics and every queue's gauges, read from Redis now.
    Needs ``read`` or ``meta`` on every queue (``*``) when tokens are configured; limited to
    a few scrapes a second per client address."""
    state = call.state
    body = await state.metrics.render(state.settings.include_process_metrics)
    return Response(body, headers={"Content-Type": CONTENT_TYPE})


@operation.get(
    "/openapi.json",
    summary="OpenAPI document",
    responses={200: ("application/json", "This document (OpenAPI 3.1)", {"type": "object"})},
)
async def openapi_document(request: Request, call: Call) -> Response:
    """Generated from the msgspec types the server decodes and encodes with."""
    return json_response(call.state.openapi)


@operation.get(
    "/docs",
    summary="API documentation page",
    responses={200: ("text/html", "The API reference page (Swagger UI)")},
)
async def docs(request: Request, call: Call) -> Response:
    """This document rendered by Swagger UI, served from the package (no CDN)."""
    return docs_response(call.state.openapi)
