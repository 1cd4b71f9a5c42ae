"""Operations on jobs: retry, promote, remove (and drain, for a queue's waiting jobs), on one
job, on a list of ids, or on everything a listing's filters match.

Every action is the script ``operate-2``, which checks each job's state in the same call as it
acts, so a worker or the scheduler racing it leaves each job in exactly one state. Many jobs
go in batches of ``BATCH`` ids per call (a few ms of Redis at most), and an action over a
filter pages through the listing, so it is bounded however many jobs match and can resume
from the cursor it reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from streamq._connection import broker_errors
from streamq._errors import JobNotFound, JobStateConflict
from streamq._ids import validate_job_id
from streamq._index import JobQuery, list_refs
from streamq._scripts import JobAction

if TYPE_CHECKING:
    from streamq._broker import Broker

BATCH = 10

_APPLIES = {
    "retry": "dead, cancelled or completed",
    "promote": "scheduled or retrying",
    "remove": "completed, dead or cancelled",
    "drain": "queued, scheduled or retrying",
}


@dataclass(slots=True)
class Outcome:
    """What an action did: how many jobs it applied to, the ids it refused with their state,
    the ids with no record, and (for a filter) the cursor to resume from (None: all done)."""

    done: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    next: str | None = None


async def act(broker: Broker, queue: str, action: JobAction, ids: Sequence[str]) -> Outcome:
    """Applies ``action`` to ``ids`` in batches. Raises ``InvalidJobId``, ``BrokerUnavailable``."""
    for job_id in ids:
        validate_job_id(job_id)
    await broker.connect()
    outcome = Outcome()
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        with broker_errors(f"{action} on {queue}"):
            replies = await broker.scripts.operate(queue, action, chunk)
        for job_id, reply in zip(chunk, replies, strict=True):
            if reply == "ok":
                outcome.done += 1
            elif reply == "missing":
                outcome.missing.append(job_id)
            else:
                outcome.refused[job_id] = reply
    return outcome


async def act_on_one(broker: Broker, queue: str, action: JobAction, job_id: str) -> None:
    """Raises ``JobNotFound``, ``JobStateConflict`` (naming the states the action applies
    to), ``InvalidJobId``, ``BrokerUnavailable``."""
    outcome = await act(broker, queue, action, [job_id])
    if outcome.missing:
        raise JobNotFound(f"no job {job_id!r} in queue {queue!r}")
    if job_id in outcome.refused:
        state = outcome.refused[job_id]
        raise JobStateConflict(
            f"cannot {action} job {job_id!r}: it is {state}; {action} applies to "
            f"{_APPLIES[action]} jobs",
            job=job_id,
            state=state,
        )


async def act_matching(
    broker: Broker,
    queue: str,
    action: JobAction,
    query: JobQuery,
    *,
    cursor: str | None = None,
    max_jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Outcome:
    """Applies ``action`` to every job of ``queue`` that ``query`` matches, a page at a time,
    from ``cursor``; stops after about ``max_jobs`` (then ``next`` is where to resume).
    ``progress`` hears the running count after each batch."""
    outcome = Outcome()
    while True:
        refs, nxt = await list_refs(broker, [queue], query, limit=BATCH, cursor=cursor)
        if refs:
            page = await act(broker, queue, action, [job_id for _, job_id in refs])
            outcome.done += page.done
            outcome.refused.update(page.refused)
            if progress is not None:
                progress(outcome.done)
        cursor = nxt
        if cursor is None or (max_jobs is not None and outcome.done >= max_jobs):
            outcome.next = cursor
            return outcome
