"""Audit records in a queue's events stream: who did what to the queue, next to the state
changes it caused (an ``audit`` event, with no job of its own so a job's followers never see
it). Appended with a plain capped XADD: one key, nothing to keep consistent with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamq import _keys
from streamq._connection import broker_errors

if TYPE_CHECKING:
    from streamq._broker import Broker

AUDIT = "audit"
_MAX_JOBS = 50  # ids listed in one record; the rest are counted


def audit_message(caller: str, status: int, outcome: str, jobs: list[str]) -> str:
    """``caller=… status=… outcome=… jobs=a,b`` (the event's message)."""
    listed = ",".join(jobs[:_MAX_JOBS]) or "-"
    if len(jobs) > _MAX_JOBS:
        listed += f",...(+{len(jobs) - _MAX_JOBS})"
    return f"caller={caller} status={status} outcome={outcome} jobs={listed}"


async def record_audit(broker: Broker, queue: str, action: str, message: str) -> str:
    """Appends an ``audit`` event (``name``: the action; ``message``: an :func:`audit_message`)
    to ``queue``'s events stream, capped like every event; returns its entry id.
    Raises ``InvalidQueueName`` or ``BrokerUnavailable``."""
    key = _keys.events(_keys.validate_queue(queue))
    fields: dict[Any, Any] = {"t": AUDIT, "j": "", "n": action, "m": message}
    await broker.connect()
    with broker_errors(f"recording an audit event on {queue}"):
        entry = await broker.redis.xadd(
            key, fields, maxlen=broker.retention.events_maxlen, approximate=True
        )
    return entry.decode() if isinstance(entry, bytes) else str(entry)
