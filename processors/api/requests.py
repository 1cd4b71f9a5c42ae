"""What every application endpoint does with a request before its own work: find the
deployment's Runtime and check wallet addresses and job ids — each failure an ``ApiError`` (4xx
in the error envelope). JSON bodies are read with the server's public ``server.read_json``, so
they get the server's own limits and error codes.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import streamq
from processors.api.schemas import Accepted
from processors.errors import InvalidWalletAddress
from processors.jobs.coordination import ensure_setup
from processors.runtime import Runtime, runtime_of
from processors.solana import validate_addresses
from server import ApiError, Call, job_links

__all__ = [
    "MAX_WALLETS",
    "accepted",
    "checked_job_id",
    "checked_wallets",
    "enrichment_results_url",
    "events_url",
    "invalid_job_as_400",
    "monitoring_url",
    "new_request_id",
    "require_queues",
    "results_url",
    "runtime",
]

MAX_WALLETS = 100

A = TypeVar("A", bound=Accepted)


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
    """Where a client polls the job: its state, progress and attempts."""
    return f"/api/v1/jobs/{job_id}/status"


def enrichment_results_url(job_id: str) -> str:
    """An enrichment job's enriched batches so far."""
    return f"/api/v1/jobs/{job_id}/enrichment"


def results_url(request_id: str) -> str:
    """Everything one request produced, by its request id."""
    return f"/api/v1/results/{request_id}"


def events_url(queue: str, job_id: str) -> str:
    """The job's server-sent events, as the server links them."""
    return job_links(queue, job_id).events


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


@contextlib.contextmanager
def invalid_job_as_400() -> Iterator[None]:
    """Turns ``streamq.InvalidJob`` raised while enqueueing into ApiError 400 ``invalid_job``."""
    try:
        yield
    except streamq.InvalidJob as exc:
        raise ApiError(400, "invalid_job", str(exc)) from None


def accepted(kind: type[A], handle: streamq.JobHandle, request_id: str, **extra: Any) -> A:
    """The 202 body ``kind`` for a queued job: its id, state and where to watch it."""
    return kind(
        job_id=handle.id,
        request_id=request_id,
        status=handle.state_at_enqueue or "queued",
        queue_name=handle.queue,
        monitoring_url=monitoring_url(handle.id),
        events_url=events_url(handle.queue, handle.id),
        **extra,
    )
