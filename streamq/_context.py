"""What a handler sees of its job: the Context, and the worker's record of one delivery."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.from_thread

from streamq import _keys
from streamq._codec import decode_any
from streamq._connection import broker_errors
from streamq._types import Job, JobSpec

if TYPE_CHECKING:
    from streamq._app import App
    from streamq._flows import ChildResult
    from streamq._handle import JobHandle


@dataclass(slots=True, eq=False)
class Delivery:
    """One delivery of a job to this worker, with the fencing token that guards its outcome."""

    queue: str
    lane: str
    entry_id: str
    job_id: str
    spec: JobSpec
    attempt: int
    fence: int
    deliveries: int
    # Its earlier delivery died with its worker: it runs alone (see fetch-4.lua).
    suspect: bool = False
    task: asyncio.Task[None] | None = None
    # Why the handler was cancelled by the worker: "cancel", "lost" or "shutdown".
    stop_reason: str | None = None
    settling: bool = field(default=False)


class Context:
    """Passed to every handler: the job's identity and a way to report progress."""

    __slots__ = ("_delivery", "_job", "app")

    def __init__(self, app: App, delivery: Delivery) -> None:
        self.app = app
        self._delivery = delivery
        self._job: Job | None = None

    @property
    def job_id(self) -> str:
        return self._delivery.job_id

    @property
    def queue(self) -> str:
        return self._delivery.queue

    @property
    def name(self) -> str:
        return self._delivery.spec.name

    @property
    def attempt(self) -> int:
        """1 on the first attempt, 2 on the first retry, ..."""
        return self._delivery.attempt

    @property
    def deliveries(self) -> int:
        """How many times this job has been delivered (more than attempts after a crash)."""
        return self._delivery.deliveries

    @property
    def request_id(self) -> str | None:
        return self._delivery.spec.request_id

    @property
    def parent(self) -> str | None:
        return self._delivery.spec.parent

    @property
    def job(self) -> Job:
        """The job as delivered (built on first use)."""
        if self._job is None:
            d = self._delivery
            s = d.spec
            self._job = Job(
                id=d.job_id,
                queue=d.queue,
                name=s.name,
                state="active",
                priority=s.lane,
                payload=decode_any(bytes(s.payload)),
                attempt=d.attempt,
                max_attempts=s.max_attempts,
                deliveries=d.deliveries,
                timeout=s.timeout,
                lease=s.lease,
                created_at=s.created_at,
                parent=s.parent,
                request_id=s.request_id,
            )
        return self._job

    async def progress(self, percent: float, message: str = "") -> bool:
        """Records progress (0-100) and emits a progress event; False if this delivery no longer
        owns the job (its lease was taken), in which case the handler may stop early."""
        d = self._delivery
        keys = [_keys.events(d.queue)]
        args = [
            _keys.prefix(d.queue),
            _keys.GROUP,
            self.app.events_maxlen,
            d.job_id,
            d.fence,
            repr(float(percent)),
            message,
        ]
        with broker_errors(f"recording progress of {d.job_id}"):
            applied = await self.app.scripts.call("progress", keys, args)
        return bool(applied)

    def progress_from_thread(self, percent: float, message: str = "") -> bool:
        """:meth:`progress` for plain (threaded) handlers."""
        return anyio.from_thread.run(self.progress, percent, message)

    async def children(self) -> list[ChildResult]:
        """A flow parent's children with their states, results and errors (empty for a job
        that is not a flow parent)."""
        from streamq._flows import children_of

        return await children_of(self.app, self.queue, self.job_id)

    async def enqueue(self, name: str, payload: Any = None, **options: Any) -> JobHandle:
        """Enqueues another job, carrying this job's request id unless one is given."""
        options.setdefault("request_id", self.request_id)
        return await self.app.enqueue(name, payload, **options)
