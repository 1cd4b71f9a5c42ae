"""Tags: labels a job is found by (``app.jobs(queue, tag="wallet:9Wz...")``), given at enqueue
(``tags=[...]``) or taken from payload fields a task declares (``@app.task(...,
index=["wallet"])`` tags each job ``wallet:<its wallet>``).

``lua/tag-1.lua`` writes them right after the enqueue, for tagged jobs only (untagged jobs
pay nothing): one zset of job ids per tag, scored by creation, and the tags in the record, so
every path that deletes a record takes it out of its tags' sets in the same script. Records
that expire are dropped from a tag's set as later jobs get the tag and as listings meet them,
so a listing never returns a job whose record is gone. A job that dies between its enqueue
and its tagging (a lost connection) is left untagged, never half tagged.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from streamq._connection import broker_errors
from streamq._errors import ConfigurationError, InvalidJob
from streamq._opscripts import op_scripts

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._enqueue import EnqueueRequest
    from streamq._handle import JobHandle
    from streamq._task import TaskRegistry

_TAG = re.compile(r"\S{1,200}")
MAX_TAGS = 20
# Jobs per script call (a few ms of Redis at most).
_BATCH = 100


def check_tags(tags: Iterable[str]) -> list[str]:
    """The tags, deduplicated in order; raises ``InvalidJob`` for a tag that is not 1-200
    characters without whitespace, or for more than 20."""
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise InvalidJob(f"invalid tag {tag!r}: use 1-200 characters without whitespace")
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise InvalidJob(f"a job takes at most {MAX_TAGS} tags, not {len(out)}")
    return out


def check_index_fields(task: str, fields: Sequence[str]) -> tuple[str, ...]:
    """Raises ``ConfigurationError`` for a field name that cannot be part of a tag."""
    for field in fields:
        if not isinstance(field, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", field):
            raise ConfigurationError(f"task {task}: index field {field!r} is not a field name")
    return tuple(fields)


def payload_tags(payload: Any, fields: Sequence[str]) -> list[str]:
    """``<field>:<value>`` for each of ``fields`` the payload (a Struct, dataclass or mapping)
    has as a string or integer; other values are not indexed."""
    tags = []
    for field in fields:
        value = (
            payload.get(field) if isinstance(payload, Mapping) else getattr(payload, field, None)
        )
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        tag = f"{field}:{value}"
        if _TAG.fullmatch(tag):
            tags.append(tag)
    return tags


async def tag_jobs(broker: Broker, queue: str, jobs: Sequence[tuple[str, Sequence[str]]]) -> int:
    """Tags the jobs (id, tags) of ``queue`` whose records exist; returns how many. Raises
    ``BrokerUnavailable``."""
    todo = [(job_id, list(tags)) for job_id, tags in jobs if tags]
    tagged = 0
    scripts = op_scripts(broker)
    with broker_errors(f"tagging jobs of {queue}"):
        for start in range(0, len(todo), _BATCH):
            tagged += await scripts.tag(queue, todo[start : start + _BATCH])
    return tagged


# Per application (its task registry), the payload fields each task's jobs are tagged by.
_declared: weakref.WeakKeyDictionary[TaskRegistry, dict[str, tuple[str, ...]]] = (
    weakref.WeakKeyDictionary()
)


def declare_index(registry: TaskRegistry, task: str, fields: Sequence[str]) -> None:
    """Tags the jobs of ``task`` by ``fields`` of their payloads. Raises
    ``ConfigurationError``."""
    checked = check_index_fields(task, fields)
    if checked:
        _declared.setdefault(registry, {})[task] = checked


def tags_of(
    registry: TaskRegistry, name: str, payload: Any, given: Sequence[str] = ()
) -> list[str]:
    """A new job's tags: those given and those of its task's index fields. Raises
    ``InvalidJob``."""
    fields = _declared.get(registry, {}).get(name)
    return check_tags([*given, *payload_tags(payload, fields)] if fields else given)


async def enqueue_tagged(
    broker: Broker,
    registry: TaskRegistry,
    requests: Sequence[EnqueueRequest],
    *,
    durable: bool = False,
    given: Sequence[Sequence[str]] | None = None,
) -> list[JobHandle]:
    """``enqueue_batch``, then the tags (``given`` per request, and the tasks' index fields)
    of the jobs it created. Raises what enqueueing raises, and ``InvalidJob`` for a bad tag
    (before anything is written)."""
    from streamq._enqueue import enqueue_batch

    tags: list[list[str]] = []
    if given is not None or registry in _declared:
        extra = given if given is not None else [()] * len(requests)
        tags = [
            tags_of(registry, r.name, r.payload, g) for r, g in zip(requests, extra, strict=True)
        ]
    handles = await enqueue_batch(broker, registry, list(requests), durable=durable)
    by_queue: dict[str, list[tuple[str, list[str]]]] = {}
    for handle, job_tags in zip(handles, tags, strict=False):
        if job_tags and not handle.deduplicated:
            by_queue.setdefault(handle.queue, []).append((handle.id, job_tags))
    for queue, jobs in by_queue.items():
        await tag_jobs(broker, queue, jobs)
    return handles
