"""Wire types: what streamq stores in Redis and hands to callers."""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec

Lane = Literal["critical", "high", "normal", "low", "bulk"]
LANES: tuple[str, ...] = get_args(Lane)
"""Priority lanes, highest first; one stream each per queue."""

# The original plans' numeric priorities map onto the lanes (higher number, higher lane).
_NUMERIC_PRIORITY = {10: "critical", 7: "high", 5: "normal", 3: "low", 1: "bulk"}

JobState = Literal[
    "scheduled",
    "queued",
    "active",
    "completed",
    "retrying",
    "dead",
    "cancelled",
    "waiting-children",
]
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "dead", "cancelled"})


def lane_of(priority: str | int | None, default: str = "normal") -> str:
    """The lane for a priority given as a lane name or one of the numbers 1-10."""
    from streamq._errors import InvalidJob

    if priority is None:
        return default
    if isinstance(priority, bool):
        raise InvalidJob(f"priority must be one of {', '.join(LANES)} or 1-10, not {priority!r}")
    if isinstance(priority, int):
        if not 1 <= priority <= 10:
            raise InvalidJob(f"numeric priority must be 1-10, not {priority}")
        # Nearest mapped level at or below the number.
        return _NUMERIC_PRIORITY[max(p for p in _NUMERIC_PRIORITY if p <= priority)]
    if priority not in LANES:
        raise InvalidJob(f"priority must be one of {', '.join(LANES)} or 1-10, not {priority!r}")
    return priority


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    """Delay before retry ``n`` (1-based): ``base`` (fixed) or ``base * 2**(n-1)``
    (exponential), capped at ``maximum``, with up to ``jitter`` (a share) taken off at random."""

    kind: Literal["fixed", "exponential"] = "exponential"
    base: float = 1.0
    maximum: float = 300.0
    jitter: float = 0.25

    @classmethod
    def fixed(cls, delay: float, *, jitter: float = 0.0) -> Backoff:
        return cls(kind="fixed", base=delay, maximum=delay, jitter=jitter)

    @classmethod
    def exponential(
        cls, base: float = 1.0, *, maximum: float = 300.0, jitter: float = 0.25
    ) -> Backoff:
        return cls(kind="exponential", base=base, maximum=maximum, jitter=jitter)

    def delay(self, retry: int, rand: float) -> float:
        """Seconds to wait before retry number ``retry``; ``rand`` is uniform in [0, 1)."""
        raw = self.base if self.kind == "fixed" else self.base * 2 ** max(retry - 1, 0)
        capped = min(raw, self.maximum)
        return max(capped * (1.0 - self.jitter * rand), 0.0)


class JobSpec(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """What a delivery carries: written once at enqueue, inside the stream entry."""

    name: str
    payload: msgspec.Raw
    lane: str = "normal"
    timeout: float | None = None
    max_attempts: int = 1
    backoff: Backoff = Backoff()
    lease: float = 30.0
    result_ttl: float = 3600.0
    created_at: float = 0.0
    request_id: str | None = None
    parent: str | None = None
    parent_queue: str | None = None
    # Last, with a default: older workers decode the fields they know and ignore the rest.
    headers: dict[str, str] | None = None
    """Set by enqueue middlewares (trace context, tenant), handed to handler middlewares."""


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A job's record as read from Redis."""

    id: str
    queue: str
    name: str
    state: str
    priority: str = "normal"
    payload: Any = None
    attempt: int = 1
    max_attempts: int = 1
    deliveries: int = 0
    timeout: float | None = None
    lease: float = 30.0
    created_at: float | None = None
    run_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    parent: str | None = None
    request_id: str | None = None
    result: Any = None
    error: str | None = None
    reason: str | None = None
    progress: float = 0.0
    progress_message: str = ""
    first_event: str | None = None
    """Entry id of the job's first event: where a reader of its history starts."""
    tags: list[str] = []
    """Its tags (given at enqueue, or from the payload fields its task indexes)."""

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of a queue's events stream; ``id`` is the entry id (the SSE event id)."""

    id: str
    queue: str
    type: str
    job: str
    name: str = ""
    attempt: int = 0
    at: float = 0.0
    progress: float | None = None
    message: str | None = None
    error: str | None = None

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_STATES


class LaneStats(msgspec.Struct, frozen=True, kw_only=True):
    """One lane's stream: how many entries wait and how many are being worked on."""

    depth: int
    """Entries waiting to be delivered."""
    pending: int
    """Entries delivered and not yet settled."""


class QueueStats(msgspec.Struct, frozen=True, kw_only=True):
    """A queue at a glance: per-lane depths, delayed and dead counts, cumulative totals
    (enqueued, completed, failed, retried, dead, reclaimed, cancelled), live workers."""

    queue: str
    paused: bool
    lanes: dict[str, LaneStats]
    waiting: int
    active: int
    delayed: int
    dead: int
    totals: dict[str, int]
    workers: int
    oldest_waiting_age: float


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An entry of a queue's dead-letter stream: which job, why, and its last error."""

    id: str
    job: str
    name: str
    reason: str
    error: str
    attempt: int
    at: float
