"""Task definitions: what a handler accepts and how its jobs run."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, Literal, get_type_hints

import msgspec

from streamq import _keys
from streamq._errors import ConfigurationError, InvalidJob, InvalidPayload, UnknownJob
from streamq._types import Backoff, lane_of

Isolation = Literal["thread", "process"]
"""How a plain handler runs: in a thread of the worker (cannot be stopped) or in a killable
subprocess (see ``streamq._isolation``)."""

_PATH = re.compile(r" - at `([^`]*)`$")

# The ids an application keeps for itself: a prefix, prefixes, or a predicate on the id.
ReservedIds = str | tuple[str, ...] | Callable[[str], bool]


class TaskDef:
    """A registered task: its handler, payload/result types and run options."""

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        queue: str,
        priority: str | int,
        timeout: float | None,
        max_attempts: int,
        backoff: Backoff | float,
        lease: float,
        max_deliveries: int,
        result_ttl: float | None,
        public: bool = False,
        reserved_ids: ReservedIds | None = None,
        isolation: Isolation = "thread",
    ) -> None:
        if max_attempts < 1 or max_deliveries < 1:
            raise ConfigurationError(f"task {name}: max_attempts and max_deliveries must be >= 1")
        if lease <= 0 or (timeout is not None and timeout <= 0):
            raise ConfigurationError(f"task {name}: lease and timeout must be positive")
        self.name = name
        self.fn = fn
        try:
            self.queue = _keys.validate_queue(queue)
        except InvalidJob as exc:
            raise ConfigurationError(f"task {name}: {exc}") from None
        self.priority = lane_of(priority)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff if isinstance(backoff, Backoff) else Backoff.fixed(float(backoff))
        self.lease = lease
        self.max_deliveries = max_deliveries
        self.result_ttl = result_ttl
        self.public = _checked_public(name, public)
        self.reserved_ids = _checked_reserved_ids(name, reserved_ids)
        self.is_async = inspect.iscoroutinefunction(fn)
        if isolation not in ("thread", "process"):
            raise ConfigurationError(f"task {name}: isolation must be 'thread' or 'process'")
        if isolation == "process" and "<locals>" in getattr(fn, "__qualname__", "<locals>"):
            raise ConfigurationError(
                f"task {name}: a process-isolated handler must be a module-level function"
            )
        self.isolation: Isolation = isolation
        self.payload_type, self.result_type = _signature_types(name, fn)
        self._decoder = msgspec.msgpack.Decoder(self.payload_type)

    def __repr__(self) -> str:
        return f"TaskDef({self.name!r}, queue={self.queue!r})"

    def reserves(self, job_id: str) -> bool:
        """Whether ``job_id`` lies in the id space this task keeps for the application."""
        space = self.reserved_ids
        if space is None:
            return False
        if isinstance(space, str | tuple):
            return job_id.startswith(space)
        return bool(space(job_id))

    def coerce(self, payload: Any) -> Any:
        """The payload as the task's type; raises ``InvalidPayload`` naming the failing field."""
        if self.payload_type is Any:
            return payload
        if isinstance(self.payload_type, type) and isinstance(payload, self.payload_type):
            return payload
        try:
            return msgspec.convert(payload, self.payload_type, strict=False)
        except msgspec.ValidationError as exc:
            raise invalid_payload(self.name, exc) from None

    def decode_payload(self, raw: bytes) -> Any:
        return self._decoder.decode(raw)

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the payload (for the HTTP API)."""
        return msgspec.json.schema(self.payload_type)


class TaskRegistry:
    """An application's tasks by name (what enqueue validates against and workers run)."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskDef] = {}

    def add(self, task: TaskDef) -> None:
        """Raises ``ConfigurationError`` for a name already registered."""
        if task.name in self.tasks:
            raise ConfigurationError(f"task {task.name!r} is already registered")
        self.tasks[task.name] = task

    def task_def(self, queue: str | None, name: str) -> TaskDef:
        """The task ``name`` (on ``queue`` if given); raises ``UnknownJob`` naming the known ones."""
        task = self.tasks.get(name)
        if task is None or (queue is not None and task.queue != queue):
            known = [t.name for t in self.tasks.values() if queue is None or t.queue == queue]
            raise UnknownJob(name, known, queue)
        return task

    def queues(self) -> list[str]:
        """Every queue some task runs on."""
        return sorted({t.queue for t in self.tasks.values()})


def invalid_payload(task: str, exc: msgspec.ValidationError) -> InvalidPayload:
    text = str(exc)
    match = _PATH.search(text)
    path = match.group(1) if match else "$"
    return InvalidPayload(f"invalid payload for {task}: {text}", path=path)


def _checked_public(name: str, public: object) -> bool:
    if not isinstance(public, bool):
        raise ConfigurationError(f"task {name}: public must be True or False, not {public!r}")
    return public


def _checked_reserved_ids(name: str, space: object) -> ReservedIds | None:
    if space is None or callable(space):
        return space  # callable(): a predicate on the id
    if isinstance(space, list):
        space = tuple(space)
    prefixes = (space,) if isinstance(space, str) else space
    if not (
        isinstance(prefixes, tuple) and prefixes and all(isinstance(p, str) and p for p in prefixes)
    ):
        raise ConfigurationError(
            f"task {name}: reserved_ids must be a non-empty prefix, a tuple of them or a "
            f"function of the id, not {space!r}"
        )
    return space  # type: ignore[return-value]  # a str or a tuple of str, checked above


def _signature_types(name: str, fn: Callable[..., Any]) -> tuple[Any, Any]:
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 2:
        raise ConfigurationError(
            f"task {name}: the handler takes (ctx, payload), got {len(params)} parameters"
        )
    try:
        hints = get_type_hints(fn)
    except Exception as exc:  # unresolvable annotations are the user's to fix
        raise ConfigurationError(f"task {name}: cannot resolve type hints: {exc}") from exc
    return hints.get(params[1].name, Any), hints.get("return", Any)
