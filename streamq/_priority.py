"""Changing the priority (lane) of a job that waits, with ``lua/reprioritize-2.lua``.

The lane is part of the job's spec (what a delivery carries), so the spec is re-encoded here
and swapped by the script only if the record still holds the spec read: the read and the
swap need no lock, and two changes racing cannot lose one (the second is told to try again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from streamq import _keys
from streamq._codec import decode_spec, msgpack_encoder
from streamq._connection import broker_errors
from streamq._errors import JobNotFound, JobStateConflict
from streamq._ids import validate_job_id
from streamq._opscripts import op_scripts
from streamq._types import lane_of

if TYPE_CHECKING:
    from streamq._broker import Broker

WAITING = ("queued", "scheduled", "retrying")


async def set_priority(broker: Broker, queue: str, job_id: str, priority: str | int) -> bool:
    """Moves a waiting job to the lane of ``priority`` (a lane name or 1-10); False if it was
    there already. A queued job goes to the back of its new lane. Raises ``InvalidJob`` (an
    unknown priority), ``InvalidJobId``, ``JobNotFound``, ``JobStateConflict`` (the job is
    active or finished, or its priority changed meanwhile), ``BrokerUnavailable``."""
    lane = lane_of(priority)
    validate_job_id(job_id)
    await broker.connect()
    with broker_errors(f"changing the priority of job {job_id}"):
        raw: bytes | None = await broker.redis.hget(_keys.job(queue, job_id), "spec")  # type: ignore[assignment]
        if raw is None:
            raise JobNotFound(f"no job {job_id!r} in queue {queue!r}")
        spec = msgspec.structs.replace(decode_spec(raw), lane=lane)
        reply = await op_scripts(broker).reprioritize(
            queue, job_id, lane, read=raw, replaced=msgpack_encoder.encode(spec)
        )
    if reply == "missing":
        raise JobNotFound(f"no job {job_id!r} in queue {queue!r}")
    if reply == "changed":
        raise JobStateConflict(
            f"the priority of job {job_id!r} changed meanwhile: read it and try again",
            job=job_id,
            state="changed",
        )
    if reply not in ("ok", "same"):
        raise JobStateConflict(
            f"cannot change the priority of job {job_id!r}: it is {reply}; only waiting "
            f"({', '.join(WAITING)}) jobs change lanes",
            job=job_id,
            state=reply,
        )
    return reply == "ok"
