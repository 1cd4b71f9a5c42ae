"""Job logs: what a handler writes with ``ctx.log(message, **fields)``, kept with its job.

Each job has its own capped log (``lua/log-2.lua``): at most ``LogLimits.lines`` lines of at
most ``LogLimits.line_bytes`` bytes each and ``LogLimits.total_bytes`` in all; past that the
oldest lines are dropped and counted. The log expires and is deleted with the job's record
(every script that expires or deletes a record does the same to its log, at no cost for jobs
that never log). Each line is also a ``log`` event on the queue's events stream, so the job's
SSE stream and ``streamq tail`` show it live, with the stream's entry id as the event id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from streamq import _keys
from streamq._connection import broker_errors
from streamq._ids import validate_job_id
from streamq._opscripts import op_scripts

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._delivery import Delivery


@dataclass(frozen=True, slots=True)
class LogLimits:
    """How much of a job's log is kept."""

    lines: int = 500
    line_bytes: int = 2048
    total_bytes: int = 128 * 1024


LIMITS = LogLimits()


class LogLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a job's log: when (epoch seconds), during which attempt, the message, the
    structured fields given with it, and whether it was cut to fit ``line_bytes``."""

    at: float
    attempt: int
    message: str
    fields: dict[str, Any] = {}
    truncated: bool = False


class JobLog(msgspec.Struct, frozen=True, kw_only=True):
    """A job's log, oldest line first; ``dropped`` lines were written but no longer kept."""

    queue: str
    id: str
    lines: list[LogLine]
    dropped: int


_encoder = msgspec.json.Encoder(enc_hook=repr)  # a field of any type is logged as its repr
_decoder = msgspec.json.Decoder(LogLine)


def plain_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` as JSON values (what a line keeps of them), e.g. to send them elsewhere."""
    return msgspec.json.decode(_encoder.encode(fields))  # type: ignore[no-any-return]


def encode_line(line: LogLine, max_bytes: int) -> bytes:
    """``line`` as stored, within ``max_bytes``: a longer one loses its fields, then the end
    of its message (and says so)."""
    data = _encoder.encode(line)
    if len(data) <= max_bytes:
        return data

    def cut(length: int) -> bytes:
        short = LogLine(
            at=line.at, attempt=line.attempt, message=line.message[:length], truncated=True
        )
        return _encoder.encode(short)

    # The longest head of the message that fits (escapes and UTF-8 make bytes and characters
    # differ, so search rather than compute).
    lo, hi = 0, len(line.message)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(cut(mid)) <= max_bytes:
            lo = mid
        else:
            hi = mid - 1
    return cut(lo)


async def write(
    broker: Broker,
    delivery: Delivery,
    at: float,
    message: str,
    fields: dict[str, Any],
    limits: LogLimits = LIMITS,
) -> bool:
    """Appends a line to the log of ``delivery``'s job; False when the delivery no longer
    holds the job's lease (nothing is written). Raises ``BrokerUnavailable``."""
    line = encode_line(
        LogLine(at=at, attempt=delivery.attempt, message=str(message), fields=fields),
        limits.line_bytes,
    )
    lease = delivery.lease
    with broker_errors(f"logging for job {lease.job_id}"):
        return await op_scripts(broker).log(
            delivery.queue,
            lease.job_id,
            fence=lease.fence,
            entry_id=lease.entry_id,
            line=line,
            message=str(message)[: limits.line_bytes],
            max_lines=limits.lines,
            max_bytes=limits.total_bytes,
        )


async def read(broker: Broker, queue: str, job_id: str) -> JobLog | None:
    """The log of job ``job_id`` (empty for a job that never logged); None when there is no
    such job. Raises ``InvalidJobId``, ``BrokerUnavailable``."""
    validate_job_id(job_id)
    await broker.connect()
    with broker_errors(f"reading the log of job {job_id}"):
        pipe = broker.redis.pipeline(transaction=False)
        pipe.hmget(_keys.job(queue, job_id), ["spec", "logs"])
        pipe.lrange(_keys.job_log(queue, job_id), 0, -1)
        (spec, written), raw = await pipe.execute()
    if spec is None:
        return None
    if written is None:  # a log key without the record's count belongs to an earlier job
        return JobLog(queue=queue, id=job_id, lines=[], dropped=0)
    lines = [_decoder.decode(r) for r in raw]
    return JobLog(queue=queue, id=job_id, lines=lines, dropped=max(int(written) - len(lines), 0))
