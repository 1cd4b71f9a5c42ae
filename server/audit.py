"""The audit trail: every write and admin call, allowed or refused, as one ``server.audit``
log line naming the token (its name, never the secret), the operation, the queue, the job
ids or dead-letter entries touched and the outcome.

The records go to the log only: streamq's public API has no call that appends an arbitrary
entry to a queue's events stream (that stream carries job state changes), so writing audit
events there waits for one.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request

from server.errors import ApiError, client_error, is_unavailable

audit_log = logging.getLogger("server.audit")


def outcome_of(exc: BaseException) -> tuple[int, str]:
    """The status and outcome a failed call is answered with (as the error handlers do)."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = exc.exceptions
        exc = next((e for e in leaves if isinstance(e, ApiError)), None) or next(
            (e for e in leaves if is_unavailable(e)), leaves[0]
        )
    if isinstance(exc, ApiError):
        return exc.status, exc.detail.code
    known = client_error(exc)
    if known is not None:
        return known.status, known.detail.code
    if is_unavailable(exc):
        return 503, "broker_unavailable"
    if isinstance(exc, ClientDisconnect):
        return 400, "client_disconnected"
    return 500, "error"


def record(request: Request, action: str, caller: str, status: int, outcome: str) -> None:
    """Logs one audited call (``outcome``: ``ok`` or the error code)."""
    queue = request.path_params.get("queue", "-")
    jobs: list[str] = list(getattr(request.state, "audit_jobs", None) or [])
    ident = request.path_params.get("id")
    if not jobs and ident is not None:
        jobs = [ident]
    fields = {
        "action": action,
        "caller": caller,
        "queue": queue,
        "jobs": jobs,
        "status": status,
        "outcome": outcome,
    }
    audit_log.info(
        "audit action=%s caller=%s queue=%s jobs=%s status=%d outcome=%s",
        action,
        caller,
        queue,
        ",".join(jobs[:50]) + (f",...(+{len(jobs) - 50})" if len(jobs) > 50 else "") or "-",
        status,
        outcome,
        extra={"audit": fields},
    )
