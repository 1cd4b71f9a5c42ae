"""streamq: a job queue on Redis Streams.

Priority lanes, deterministic ids with atomic dedup, leases with fencing and reclaim, retries
with backoff, dead letters, delayed jobs, progress events, cancel and pause. See the README.
"""

from __future__ import annotations

from streamq._app import App
from streamq._cache import cached, enqueue_verified
from streamq._context import Context
from streamq._enqueue import EnqueueRequest
from streamq._errors import (
    BrokerUnavailable,
    ConfigurationError,
    EnqueueOutcomeUnknown,
    Fatal,
    HandlerSignal,
    InvalidJob,
    InvalidJobId,
    InvalidPayload,
    InvalidQueueName,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobStateConflict,
    LockError,
    PayloadMismatch,
    QueueFull,
    QueueInUse,
    Retry,
    StreamqError,
    SyncInEventLoop,
    UnknownJob,
)
from streamq._events import EventBuffer, EventFeeds, Subscription, event_feeds
from streamq._flows import ChildResult, Flow, FlowState
from streamq._groups import grouped
from streamq._handle import JobHandle
from streamq._ids import job_id, validate_job_id
from streamq._inspect import QueueSummary, ReadModel
from streamq._joblog import JobLog, LogLine
from streamq._lock import Lock
from streamq._middleware import EnqueueCall, HandlerCall
from streamq._schedule import Schedule, Scheduler
from streamq._sync import SyncJobHandle
from streamq._task import TaskDef
from streamq._types import (
    LANES,
    TERMINAL_STATES,
    Backoff,
    DeadLetter,
    Event,
    Job,
    JobState,
    Lane,
    LaneStats,
    QueueStats,
    lane_of,
)
from streamq._worker import Worker, run_worker

__all__ = [
    "LANES",
    "TERMINAL_STATES",
    "App",
    "Backoff",
    "BrokerUnavailable",
    "ChildResult",
    "ConfigurationError",
    "Context",
    "DeadLetter",
    "EnqueueCall",
    "EnqueueOutcomeUnknown",
    "EnqueueRequest",
    "Event",
    "EventBuffer",
    "EventFeeds",
    "Fatal",
    "Flow",
    "FlowState",
    "HandlerCall",
    "HandlerSignal",
    "InvalidJob",
    "InvalidJobId",
    "InvalidPayload",
    "InvalidQueueName",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobHandle",
    "JobLog",
    "JobNotFound",
    "JobState",
    "JobStateConflict",
    "Lane",
    "LaneStats",
    "Lock",
    "LockError",
    "LogLine",
    "PayloadMismatch",
    "QueueFull",
    "QueueInUse",
    "QueueStats",
    "QueueSummary",
    "ReadModel",
    "Retry",
    "Schedule",
    "Scheduler",
    "StreamqError",
    "Subscription",
    "SyncInEventLoop",
    "SyncJobHandle",
    "TaskDef",
    "UnknownJob",
    "Worker",
    "cached",
    "enqueue_verified",
    "event_feeds",
    "grouped",
    "job_id",
    "lane_of",
    "run_worker",
    "validate_job_id",
]
