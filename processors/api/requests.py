"""What every application endpoint does with a request before its own work: find the
deployment's Runtime, read and decode the JSON body within the server's size limit, and check
wallet addresses and job ids — each failure an ``ApiError`` (4xx in the error envelope).

The body is read here with starlette and msgspec, on ``server``'s public names only
(``Call.state.settings.max_body_bytes``), with the same error codes as the server's own
routes: 413 ``payload_too_large``, 400 ``bad_request`` / ``malformed_json`` /
``payload_too_deep``, 422 ``invalid_payload`` with the field path.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import TypeVar

import msgspec
from starlette.requests import Request

import streamq
from processors.errors import InvalidWalletAddress
from processors.jobs.coordination import ensure_setup
from processors.runtime import Runtime, runtime_of
from processors.solana import validate_addresses
from server import ApiError, Call

__all__ = [
    "MAX_WALLETS",
    "checked_job_id",
    "checked_wallets",
    "enrichment_results_url",
    "events_url",
    "monitoring_url",
    "new_request_id",
    "read_json",
    "require_queues",
    "results_url",
    "runtime",
]

T = TypeVar("T")

MAX_WALLETS = 100


async def runtime(call: Call) -> Runtime:
    """The Runtime of the server's App (503 ``not_configured`` if processors did not build
    it), with the deployment's once-only setup done."""
    try:
        rt = runtime_of(call.app)
    except Exception as exc:
        raise ApiError(503, "not_configured", str(exc)) from None
    await ensure_setup(call.app)
    return rt


def new_request_id(kind: str) -> str:
    """A fresh request id (``kind-<ms>-<random>``), as the plans' controllers make them."""
    return f"{kind}-{int(time.time() * 1000)}-{secrets.token_hex(5)}"


def monitoring_url(job_id: str) -> str:
    return f"/api/v1/jobs/{job_id}/status"


def enrichment_results_url(job_id: str) -> str:
    return f"/api/v1/jobs/{job_id}/enrichment"


def results_url(request_id: str) -> str:
    return f"/api/v1/results/{request_id}"


def events_url(queue: str, job_id: str) -> str:
    return f"/v1/queues/{queue}/jobs/{job_id}/events"


def checked_wallets(addresses: list[str], *, at_least: int = 1) -> list[str]:
    """The distinct addresses, in order; ApiError 400 naming every invalid one."""
    try:
        wallets = validate_addresses(dict.fromkeys(addresses))
    except InvalidWalletAddress as exc:
        raise ApiError(400, "invalid_wallet_address", str(exc), known=exc.addresses) from None
    if len(wallets) < at_least:
        message = f"at least {at_least} distinct wallet(s) are needed, got {len(wallets)}"
        raise ApiError(400, "not_enough_wallets", message)
    if len(wallets) > MAX_WALLETS:
        raise ApiError(400, "too_many_wallets", f"at most {MAX_WALLETS} wallets per request")
    return wallets


def require_queues(call: Call, scope: str, queues: Iterable[str]) -> None:
    """ApiError 403 ``insufficient_scope`` unless the caller holds ``scope`` on every queue an
    operation touches. For operations without ``{queue}`` in the path declared
    ``queue_filtered``: the server then checked only that the token holds ``scope`` on some
    queue, so a token for some of the application's queues can use what they cover."""
    for queue in dict.fromkeys(queues):
        if not call.allows(scope, queue):
            raise ApiError(
                403,
                "insufficient_scope",
                f"this token lacks the '{scope}' scope for queue {queue!r}",
                headers={
                    "WWW-Authenticate": (
                        f'Bearer realm="streamq", error="insufficient_scope", scope="{scope}"'
                    )
                },
            )


def checked_job_id(job_id: str) -> str:
    """``job_id`` if well formed, else ApiError 400 ``invalid_job_id``."""
    try:
        return streamq.validate_job_id(job_id)
    except streamq.InvalidJobId:
        message = "a job id is 1-200 characters of letters, digits and ._:@-"
        raise ApiError(400, "invalid_job_id", message) from None


async def read_json(request: Request, call: Call, kind: type[T]) -> T:
    """The request's JSON body as ``kind``, read up to the server's ``max_body_bytes``."""
    # The server has read (and size-checked) the body already when the operation declares one.
    body: bytes | None = getattr(request.state, "body", None)
    if body is None:
        body = await _read_body(request, call.state.settings.max_body_bytes)
    return decode_body(body, kind)


async def _read_body(request: Request, limit: int) -> bytes:
    # The declared Content-Length refuses an honest oversized upload without reading it; the
    # running total catches chunked or lying clients.
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if size > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body exceeds {limit} bytes")


def decode_body(body: bytes, kind: type[T]) -> T:
    """``body`` decoded as ``kind``: ApiError 400 for broken JSON, 422 for the wrong shape."""
    if not body.strip():
        raise ApiError(400, "bad_request", "the request needs a JSON body")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise _invalid_payload(exc) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "payload_too_deep", "JSON nesting is too deep") from None


def _invalid_payload(exc: msgspec.ValidationError) -> ApiError:
    # msgspec ends its message with " - at `$.a.b`": that path goes into the envelope too.
    message, marker, path = str(exc).rpartition(" - at `")
    if not marker or not path.endswith("`"):
        return ApiError(422, "invalid_payload", f"{exc} - at `$`", path="$")
    path = path[:-1]
    return ApiError(422, "invalid_payload", f"{message} - at `{path}`", path=path)
