"""The JSON bodies of the HTTP API, as msgspec Structs.

These types are the single source of truth: requests are decoded with them, responses are
encoded from them, and ``/openapi.json`` is generated from them. New fields get defaults so
older clients keep decoding newer responses.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from streamq import Lane

JOB_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,200}$"
QUEUE_PATTERN = r"^[A-Za-z0-9._:@-]{1,200}$"
ENTRY_ID_PATTERN = r"^[0-9]{1,20}-[0-9]{1,20}$"

JobId = Annotated[str, msgspec.Meta(pattern=JOB_ID_PATTERN)]
NumericPriority = Annotated[int, msgspec.Meta(ge=1, le=10)]
Seconds = Annotated[float, msgspec.Meta(ge=0, le=366 * 86400)]


class EnqueueBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One job to enqueue. ``payload`` must fit the payload schema of job ``name``."""

    # Kept raw so size and depth are checked before it is decoded into the task's type.
    payload: msgspec.Raw
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    id: JobId | None = None
    priority: Lane | NumericPriority | None = None
    delay: Seconds | None = None
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0, le=366 * 86400)] | None = None
    request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class BatchBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Many jobs in one call; all are validated before any is enqueued."""

    jobs: list[EnqueueBody]


class JobLinks(msgspec.Struct, frozen=True, kw_only=True):
    self: str
    events: str


class EnqueueResult(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    queue: str
    state: str
    deduplicated: bool
    links: JobLinks


class BatchResult(msgspec.Struct, frozen=True, kw_only=True):
    jobs: list[EnqueueResult]


class JobView(msgspec.Struct, frozen=True, kw_only=True):
    """A job as stored: state, progress, attempts, result or error, timestamps (epoch seconds)."""

    id: str
    queue: str
    name: str
    state: str
    priority: str
    payload: Any = None
    attempt: int = 0
    max_attempts: int = 1
    deliveries: int = 0
    progress: float = 0.0
    progress_message: str = ""
    result: Any = None
    error: str | None = None
    reason: str | None = None  # why a job ended up dead (attempts exhausted, fatal, ...)
    created_at: float | None = None
    run_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    parent: str | None = None
    request_id: str | None = None
    tags: list[str] = []
    links: JobLinks | None = None


class CancelResult(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    queue: str
    cancelled: bool
    state: str | None


class LaneView(msgspec.Struct, frozen=True, kw_only=True):
    depth: int
    pending: int


class StateCounts(msgspec.Struct, frozen=True, kw_only=True):
    waiting: int
    active: int
    delayed: int
    dead: int


class JobType(msgspec.Struct, frozen=True, kw_only=True):
    """A job name the queue accepts and the JSON schema its payload must satisfy."""

    name: str
    priority: str
    max_attempts: int
    timeout: float | None
    payload_schema: dict[str, Any]


class QueueView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    paused: bool
    counts: StateCounts
    lanes: dict[str, LaneView]
    totals: dict[str, int]
    # Events per second by type over the last minute of the queue's events stream, by Redis's
    # clock: the read model's one meaning of rates (streamq._inspect), shared with the CLI.
    rates: dict[str, float]
    workers: int
    oldest_waiting_age: float
    jobs: list[JobType]


class QueueList(msgspec.Struct, frozen=True, kw_only=True):
    queues: list[QueueView]


class PauseResult(msgspec.Struct, frozen=True, kw_only=True):
    queue: str
    paused: bool


class DeadLetterView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    job: str
    name: str
    reason: str
    error: str | None = None
    attempt: int = 0
    at: float = 0.0


class DeadLetterList(msgspec.Struct, frozen=True, kw_only=True):
    queue: str
    dead_letters: list[DeadLetterView]


class CountResult(msgspec.Struct, frozen=True, kw_only=True):
    queue: str
    count: int


class Health(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    status: str
    redis: bool | None = None


class EventView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The ``data`` of one SSE message; the SSE ``id`` is the events-stream entry id."""

    id: str
    queue: str
    job: str
    type: str
    name: str = ""
    attempt: int = 0
    at: float = 0.0
    progress: float | None = None
    message: str | None = None
    error: str | None = None
