"""Every Redis key streamq uses is built here (the Lua prelude mirrors the per-job layout).

All keys of one queue share the hash tag ``{queue}`` so each script touches one cluster slot.
"""

from __future__ import annotations

import re

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


def lane(queue: str, lane_name: str) -> str:
    return f"{prefix(queue)}lane:{lane_name}"


def job(queue: str, job_id: str) -> str:
    return f"{prefix(queue)}job:{job_id}"


def delayed(queue: str) -> str:
    return f"{prefix(queue)}delayed"


def dead(queue: str) -> str:
    return f"{prefix(queue)}dead"


def events(queue: str) -> str:
    return f"{prefix(queue)}events"


def stats(queue: str) -> str:
    return f"{prefix(queue)}stats"


def paused(queue: str) -> str:
    return f"{prefix(queue)}paused"


def workers(queue: str) -> str:
    return f"{prefix(queue)}workers"


def finished(queue: str) -> str:
    return f"{prefix(queue)}finished"


def custom(queue: str, *parts: str) -> str:
    """A key for features built on a queue (locks, limits, flows), still under its hash tag."""
    return prefix(queue) + ":".join(parts)


def lock(name: str) -> str:
    """A named lock: its own hash tag, so locks spread over a cluster independently of queues."""
    return f"{ROOT}:{{lock:{name}}}"


def lock_fence(name: str) -> str:
    """The lock's fencing counter (same slot as the lock)."""
    return f"{ROOT}:{{lock:{name}}}:fence"
