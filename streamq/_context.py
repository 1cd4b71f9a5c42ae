"""What a handler sees of its job (the Context), and what the worker, the scheduler and the
context use of the application that runs them (the ``Application`` protocol)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio.from_thread

from streamq._codec import decode_any
from streamq._connection import broker_errors
from streamq._delivery import Delivery
from streamq._types import Job

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._delivery import FinishHook
    from streamq._flows import ChildResult
    from streamq._handle import JobHandle
    from streamq._task import TaskRegistry

__all__ = ["Application", "Context", "Delivery"]


class Application(Protocol):
    """What the worker, the scheduler and a handler's context need of the application that
    runs them; :class:`streamq.App` is the implementation. Declared here so that none of them
    imports the facade."""

    @property
    def broker(self) -> Broker: ...

    @property
    def registry(self) -> TaskRegistry: ...

    @property
    def finish_hooks(self) -> list[FinishHook]: ...

    @property
    def queue_concurrency(self) -> dict[str, int]:
        """Jobs at once per queue in one worker, as the application declares them."""

    @property
    def enqueue(self) -> Callable[..., Awaitable[JobHandle]]: ...

    @property
    def redis(self) -> Any:
        """The Redis client, as handlers have always reached it (``ctx.app.redis``)."""

    async def job(self, queue: str, id: str) -> Job | None: ...

    def handle(self, queue: str, id: str) -> JobHandle: ...

    async def close(self) -> None: ...


class Context:
    """Passed to every handler: the job's identity and a way to report progress."""

    __slots__ = ("_delivery", "_job", "app")

    def __init__(self, app: Application, delivery: Delivery) -> None:
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
        with broker_errors(f"recording progress of {d.job_id}"):
            return await self.app.broker.scripts.progress(
                d.queue, d.lease, percent=percent, message=message
            )

    def progress_from_thread(self, percent: float, message: str = "") -> bool:
        """:meth:`progress` for plain (threaded) handlers."""
        return anyio.from_thread.run(self.progress, percent, message)

    async def log(self, message: str, **fields: Any) -> bool:
        """Appends a line to this job's own log (capped: the oldest lines give way, see
        ``streamq._joblog``) and a ``log`` event to the queue's events; ``fields`` are kept
        with the line as JSON (a value JSON cannot hold is kept as its repr). False if this
        delivery no longer owns the job (nothing is written). Raises ``BrokerUnavailable``."""
        from streamq import _joblog

        return await _joblog.write(self.app.broker, self._delivery, time.time(), message, fields)

    def log_from_thread(self, message: str, **fields: Any) -> bool:
        """:meth:`log` for plain (threaded) handlers."""
        return anyio.from_thread.run(functools.partial(self.log, message, **fields))

    async def children(self) -> list[ChildResult]:
        """A flow parent's children with their states, results and errors (empty for a job
        that is not a flow parent)."""
        from streamq._flows import children_of

        return await children_of(self.app.broker, self.queue, self.job_id)

    async def enqueue(self, name: str, payload: Any = None, **options: Any) -> JobHandle:
        """Enqueues another job, carrying this job's request id unless one is given."""
        options.setdefault("request_id", self.request_id)
        return await self.app.enqueue(name, payload, **options)
