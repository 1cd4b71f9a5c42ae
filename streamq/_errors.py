"""The one exception tree of streamq.

::

    StreamqError
    ├── ConfigurationError      bad settings (a Redis URL, a task definition)
    ├── BrokerUnavailable       Redis cannot be reached or answered with an error
    │   ├── QueueFull           Redis refuses new jobs for lack of memory (maxmemory/noeviction)
    │   └── EnqueueOutcomeUnknown  the connection failed mid-call: the jobs may have been written
    ├── InvalidJob              the caller's job cannot be accepted; nothing was written
    │   ├── UnknownJob          no task of that name is registered (for that queue)
    │   ├── InvalidPayload      the payload does not fit the task's type (names the field path)
    │   ├── InvalidJobId        an id outside 1-200 chars of [A-Za-z0-9._:@-]
    │   ├── InvalidQueueName    a queue name outside the same alphabet (a brace breaks hash tags)
    │   └── PayloadMismatch     an application-owned id deduplicated onto a job with another payload
    ├── JobFailed               a waited-for job ended in the dead-letter stream
    ├── JobCancelled            a waited-for job was cancelled
    ├── JobNotFound             no record of that job (never enqueued, or expired)
    ├── JobStateConflict        the job's state does not allow the action (promote a queued job)
    ├── QueueInUse              live workers serve a queue asked to be deleted (without force)
    ├── LockError               a lock could not be taken in time or was lost
    ├── SyncInEventLoop         a ``*_sync`` call from inside a running event loop
    └── HandlerSignal           raised by handlers to steer the broker (not errors of streamq)
        ├── Fatal               do not retry: dead-letter the job at once
        └── Retry               retry after a given delay (optionally without spending an attempt)
"""

from __future__ import annotations


class StreamqError(Exception):
    """Root of every exception streamq raises."""


class ConfigurationError(StreamqError):
    """Invalid settings: a Redis URL, a task definition, an option out of range."""


class BrokerUnavailable(StreamqError):
    """Redis could not be reached, or failed the command."""


class QueueFull(BrokerUnavailable):
    """Redis refused the write for lack of memory; the job was not enqueued."""


class EnqueueOutcomeUnknown(BrokerUnavailable):
    """The connection failed while an enqueue was under way, so its jobs may or may not have
    been written. Enqueue again with the same ids (``job_ids``, in the order given; ``job_id``
    is the first): a job that did land answers ``deduplicated=True`` and is not added twice."""

    def __init__(self, message: str, job_ids: list[str]) -> None:
        super().__init__(message)
        self.job_ids = job_ids
        self.job_id = job_ids[0] if job_ids else ""


class SyncInEventLoop(StreamqError):
    """A blocking ``*_sync`` call (``App.enqueue_sync``, a sync handle's ``result``) was made
    from a thread running an event loop, which it would stall: await the async API there."""


class InvalidJob(StreamqError):
    """The job cannot be accepted as given; nothing was written."""


class UnknownJob(InvalidJob):
    """No task with that name is registered (for the queue named)."""

    def __init__(self, name: str, known: list[str], queue: str | None = None) -> None:
        where = f" on queue {queue!r}" if queue else ""
        super().__init__(
            f"unknown job {name!r}{where}; known: {', '.join(sorted(known)) or 'none'}"
        )
        self.name = name
        self.known = sorted(known)
        self.queue = queue


class InvalidPayload(InvalidJob):
    """The payload does not fit the task's payload type; ``path`` names the field."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(message)
        self.path = path


class InvalidJobId(InvalidJob):
    """A job id must be 1-200 characters of letters, digits and ``._:@-``."""


class InvalidQueueName(InvalidJob):
    """A queue name must be 1-200 characters of letters, digits and ``._:@-``."""


class PayloadMismatch(InvalidJob):
    """The id the application derived is held by an existing job whose payload differs from
    the one asked for (someone else enqueued under it): the existing job is not reused."""

    def __init__(self, queue: str, job_id: str, name: str) -> None:
        super().__init__(
            f"job {job_id!r} on queue {queue!r} ({name}) exists with a different payload "
            "than the one asked for; refusing to reuse it"
        )
        self.queue = queue
        self.job_id = job_id
        self.name = name


class JobFailed(StreamqError):
    """The job ended in the dead-letter stream; ``error`` is its last error."""

    def __init__(self, job_id: str, error: str | None, reason: str | None = None) -> None:
        super().__init__(f"job {job_id} failed: {error or reason or 'unknown error'}")
        self.job_id = job_id
        self.error = error
        self.reason = reason


class JobCancelled(StreamqError):
    """The job was cancelled before it completed."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id


class JobNotFound(StreamqError):
    """No record of the job: it was never enqueued, or its record expired."""


class JobStateConflict(StreamqError):
    """The job is not in a state the action applies to (``state`` says which it is in)."""

    def __init__(self, message: str, *, job: str, state: str) -> None:
        super().__init__(message)
        self.job = job
        self.state = state


class QueueInUse(StreamqError):
    """Live workers serve the queue: it is not deleted unless forced (``workers`` says how
    many beat within the last 15 s)."""

    def __init__(self, message: str, *, workers: int) -> None:
        super().__init__(message)
        self.workers = workers


class LockError(StreamqError):
    """A lock could not be acquired in time, or its ownership was lost."""


class HandlerSignal(Exception):
    """Base of the exceptions a handler raises to steer what happens to its job."""


class Fatal(HandlerSignal):
    """Non-retryable failure: the job goes to the dead-letter stream at once."""


class Retry(HandlerSignal):
    """Retry the job after ``delay`` seconds; ``count_attempt=False`` keeps the attempt
    (for "rate limited, try again later")."""

    def __init__(
        self, message: str = "retry requested", *, delay: float = 1.0, count_attempt: bool = True
    ) -> None:
        super().__init__(message)
        self.delay = delay
        self.count_attempt = count_attempt
