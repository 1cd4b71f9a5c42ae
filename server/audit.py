"""The audit trail: every write and admin call, allowed or refused, as one ``server.audit``
log line naming the token (its name, never the secret), the operation, the queue, the job
ids or dead-letter entries touched and the outcome.

Each record also goes to the queue's events stream as an ``audit`` event
(``App.record_audit``), for the queues this server has tasks for: written in the background,
so a slow or frozen Redis never holds the answer back, and skipped when Redis was the
failure. The log line is the record that always exists; the stream copy is best effort.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request

from server.errors import ApiError, client_error, is_unavailable

audit_log = logging.getLogger("server.audit")
log = logging.getLogger(__name__)
# Longest an audit event's XADD may take before it is given up (the log line stays).
STREAM_TIMEOUT = 2.0
# Background writes in flight (held so they are not garbage-collected mid-write).
_writing: set[asyncio.Task[None]] = set()


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
    _to_events_stream(request, fields)


def _to_events_stream(request: Request, fields: dict[str, Any]) -> None:
    """Appends the record to its queue's events stream in the background: only for a queue
    the server has tasks for (a refused call on a made-up queue creates no keys), and not
    when Redis was the failure."""
    state = getattr(request.app.state, "streamq", None)
    queue = fields["queue"]
    if state is None or fields["outcome"] == "broker_unavailable":
        return
    if queue not in state.task_queues():
        return
    task = asyncio.get_running_loop().create_task(_write(state.app, fields))
    _writing.add(task)
    task.add_done_callback(_writing.discard)


async def _write(app: Any, fields: dict[str, Any]) -> None:
    try:
        async with asyncio.timeout(STREAM_TIMEOUT):
            await app.record_audit(
                fields["queue"],
                action=fields["action"],
                caller=fields["caller"],
                status=fields["status"],
                outcome=fields["outcome"],
                jobs=fields["jobs"],
            )
    except Exception as exc:  # the log line is the record; this copy is best effort
        log.info("audit event not written to %s's events stream: %r", fields["queue"], exc)
