"""The one error envelope, ``{"error": {"code": ..., "message": ...}}``, and its handlers.

Every failure a client can see goes through here, so a bad request is always a 4xx with a
machine-readable code, never a 500 with an HTML page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import msgspec
import redis.exceptions
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

import streamq

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What went wrong: a stable ``code`` for programs and a ``message`` for people."""

    code: str
    message: str
    path: str | None = None  # the JSON path of the offending field, for validation errors
    known: list[str] | None = None  # the accepted values, e.g. the job names of a queue


class ErrorResponse(msgspec.Struct, frozen=True, kw_only=True):
    error: ErrorDetail


class ApiError(Exception):
    """Raised by handlers and guards; rendered as the error envelope with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        path: str | None = None,
        known: list[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = ErrorDetail(code=code, message=message, path=path, known=known)
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = ErrorResponse(error=ErrorDetail(code=code, message=message))
    return Response(
        _encoder.encode(body), status, headers=dict(headers or {}), media_type="application/json"
    )


def render(exc: ApiError) -> Response:
    return Response(
        _encoder.encode(ErrorResponse(error=exc.detail)),
        exc.status,
        headers=exc.headers,
        media_type="application/json",
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return render(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no route, wrong method) in our envelope."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    return error_response(exc.status_code, code, message, exc.headers)


async def handle_broker_error(request: Request, exc: Exception) -> Response:
    """Errors raised by streamq: client mistakes are 4xx, an unreachable Redis is a 503."""
    known = client_error(exc)  # first: QueueFull is a BrokerUnavailable too
    if known is not None:
        return render(known)
    if isinstance(exc, _UNAVAILABLE):
        return render(broker_unavailable(request, exc))
    log.error("unexpected broker error on %s", request.url.path, exc_info=exc)
    return render(ApiError(500, "internal_error", "internal error"))


def client_error(exc: BaseException) -> ApiError | None:
    """The answer to a streamq error that is the client's doing (or a full Redis), else None."""
    if isinstance(exc, streamq.UnknownJob):
        return ApiError(400, "unknown_job", str(exc))
    if isinstance(exc, streamq.InvalidPayload):
        return ApiError(422, "invalid_payload", str(exc))
    if isinstance(exc, streamq.InvalidJobId):
        return ApiError(400, "invalid_job_id", str(exc))
    if isinstance(exc, streamq.InvalidJob):
        return ApiError(400, "invalid_job", str(exc))
    if isinstance(exc, streamq.QueueFull):
        return ApiError(503, "queue_full", str(exc), headers={"Retry-After": "1"})
    return None


def is_unavailable(exc: BaseException) -> bool:
    """Redis down, frozen or too slow, as redis-py or streamq report it."""
    return isinstance(exc, _UNAVAILABLE)


_UNAVAILABLE = (
    streamq.BrokerUnavailable,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def broker_unavailable(request: Request, why: object) -> ApiError:
    """The 503 for a Redis that is down, frozen or too slow (logged once, as a warning)."""
    log.warning("broker unavailable on %s %s: %s", request.method, request.url.path, why)
    return ApiError(503, "broker_unavailable", "Redis is unreachable", headers={"Retry-After": "1"})


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


async def handle_exception_group(request: Request, exc: Exception) -> Response:
    """A task group's failure, answered as its most telling member: a client error first,
    then an unreachable Redis (503), and only otherwise a 500."""
    assert isinstance(exc, BaseExceptionGroup)
    leaves = _leaves(exc)
    for leaf in leaves:
        known = leaf if isinstance(leaf, ApiError) else client_error(leaf)
        if known is not None:
            return render(known)
    for leaf in leaves:
        if isinstance(leaf, _UNAVAILABLE):
            return render(broker_unavailable(request, leaf))
    for leaf in leaves:
        if isinstance(leaf, streamq.StreamqError | redis.exceptions.RedisError):
            return await handle_broker_error(request, leaf)
    return await handle_unexpected(request, exc)


async def handle_client_disconnect(request: Request, exc: Exception) -> Response:
    """A client that hung up mid-body is not a server error: a note at INFO, no traceback
    (the response goes nowhere)."""
    log.info("client %s left during %s %s", _peer(request), request.method, request.url.path)
    return render(ApiError(400, "client_disconnected", "the client closed the connection"))


def _peer(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "unknown"


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Last resort: log with the traceback, answer with the envelope (and no internals)."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render(ApiError(500, "internal_error", "internal error"))
