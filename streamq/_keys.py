"""Every Redis key streamq uses is built here (the Lua prelude mirrors the per-job layout).

All keys of one queue share the hash tag ``{queue}`` so each script touches one cluster slot.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from streamq._errors import InvalidQueueName

ROOT = "sq"
GROUP = "workers"


def registry() -> str:
    """The set of every queue ever used (so nothing has to scan the keyspace)."""
    return f"{ROOT}:queues"


_VALID_QUEUE = re.compile(r"[A-Za-z0-9._:@-]{1,200}")
_checked: set[str] = set()


def validate_queue(queue: object) -> str:
    """Returns ``queue`` if it is a valid queue name (1-200 of letters, digits and ``._:@-``:
    a brace would break the hash tag); raises ``InvalidQueueName`` otherwise."""
    if isinstance(queue, str) and (queue in _checked or _VALID_QUEUE.fullmatch(queue)):
        if len(_checked) < 100_000:
            _checked.add(queue)
        return queue
    raise InvalidQueueName(
        f"invalid queue name {queue!r}: use 1-200 characters of letters, digits and ._:@-"
    )


def prefix(queue: str) -> str:
    return f"{ROOT}:{{{validate_queue(queue)}}}:"


def custom(queue: str, *parts: str) -> str:
    """A key for features built on a queue (locks, limits, flows), still under its hash tag."""
    return prefix(queue) + ":".join(parts)


def _queue_key(*parts: str) -> Callable[[str], str]:
    """The builder of one fixed key of a queue: ``sq:{queue}:`` and ``parts`` joined by ``:``."""
    suffix = ":".join(parts)

    def build(queue: str) -> str:
        return prefix(queue) + suffix

    return build


# One key each per queue.
delayed = _queue_key("delayed")
dead = _queue_key("dead")
events = _queue_key("events")
stats = _queue_key("stats")
paused = _queue_key("paused")
workers = _queue_key("workers")
finished = _queue_key("finished")
# Task names of the queue with no live worker serving them, with when that was first seen.
unserved = _queue_key("unserved")
# The job names the queue's index has seen.
index_names = _queue_key("ix", "names")
# The tags in use on the queue (tag -> ms last given).
tags = _queue_key("ix", "tags")
# Jobs whose worker died with them, waiting to run alone (see fetch-4).
suspects = _queue_key("suspects")
# Flow parents still waiting for children (zset scored by creation time).
flows_waiting = _queue_key("flows-waiting")
# The queue's rate limit (limit, per_ms), and the starts it admitted in its window.
ratelimit = _queue_key("ratelimit")
ratelimit_log = _queue_key("ratelimit", "log")
# Recurring jobs stored in Redis for the queue, the newest tick each fired, the job each fired last.
schedules = _queue_key("schedules")
schedules_last = _queue_key("schedules", "last")
schedules_jobs = _queue_key("schedules", "jobs")


def lane(queue: str, lane_name: str) -> str:
    return f"{prefix(queue)}lane:{lane_name}"


def job(queue: str, job_id: str) -> str:
    return f"{prefix(queue)}job:{job_id}"


def job_log(queue: str, job_id: str) -> str:
    """A job's own capped log (a list of JSON lines), expired and deleted with its record."""
    return f"{prefix(queue)}log:{job_id}"


def trace(queue: str, job_id: str) -> str:
    """A job's trace context (``streamq[otel]``)."""
    return custom(queue, "trace", job_id)


def roster(queue: str, consumer: str) -> str:
    """The tasks one worker serves on ``queue`` (name -> payload JSON schema); expires with its
    heartbeat."""
    return f"{prefix(queue)}roster:{consumer}"


def index(queue: str, state: str, name: str) -> str:
    """The queue's finished (or waiting-children) jobs of one state and name, scored by the ms
    they entered the state."""
    return f"{prefix(queue)}ix:{state}:{name}"


def tag_index(queue: str, tag: str) -> str:
    """The queue's jobs with one tag, scored by the ms they were created."""
    return f"{prefix(queue)}ix:tag:{tag}"


def lock(name: str) -> str:
    """A named lock: its own hash tag, so locks spread over a cluster independently of queues."""
    return f"{ROOT}:{{lock:{name}}}"


def lock_fence(name: str) -> str:
    """The lock's fencing counter (same slot as the lock)."""
    return f"{ROOT}:{{lock:{name}}}:fence"


def flow(queue: str, parent: str, *part: str) -> str:
    """A flow parent's bookkeeping (``children``, ``done``, ``failed`` under it)."""
    return custom(queue, "flow", parent, *part)


def group(queue: str, group_name: str) -> str:
    """The holders of a concurrency group's slots."""
    return custom(queue, "group", group_name)


def cache(queue: str, key: str) -> str:
    """A cached result."""
    return custom(queue, "cache", key)
