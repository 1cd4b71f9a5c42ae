"""Middleware: functions run around every enqueue and around every handler run.

A middleware is ``async def mw(call, call_next)``: it may look at or change ``call`` (an
:class:`EnqueueCall` or a :class:`HandlerCall`; ``call.kind`` tells which), must
``return await call_next()`` to go on, and sees whatever that raises. The first registered is
the outermost. Headers set on an enqueued job (``job.headers``) travel in the job and come back
as ``HandlerCall.headers`` on every delivery, which is how tenancy or trace context crosses from
producer to worker. With no middleware registered nothing here runs: enqueue and the handler
call are what they were.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from streamq._errors import ConfigurationError
from streamq._forward import Forward

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._context import Context
    from streamq._enqueue import EnqueueRequest
    from streamq._handle import JobHandle
    from streamq._task import TaskRegistry

__all__ = [
    "EnqueueCall",
    "HandlerCall",
    "Middleware",
    "Middlewares",
    "middlewares_of",
    "register",
    "share_middlewares",
]


@dataclass(slots=True, eq=False)
class EnqueueCall:
    """One call of ``enqueue``/``enqueue_many`` (also the scheduler's ticks): the jobs about to
    be validated and written, in order. A middleware may change their ``headers`` (or any
    option) before ``call_next()``; ``call_next()`` returns their handles, in the same order."""

    jobs: list[EnqueueRequest]
    registry: TaskRegistry | None = None
    kind: Literal["enqueue"] = "enqueue"
    state: dict[str, Any] = field(default_factory=dict)
    """Free for middlewares to pass things to each other within this call."""

    def queue_of(self, job: EnqueueRequest) -> str | None:
        """The queue ``job`` goes to: its own, else its task's (None for an unknown task,
        which the enqueue will refuse)."""
        if job.queue is not None or self.registry is None:
            return job.queue
        task = self.registry.tasks.get(job.name)
        return task.queue if task is not None else None


@dataclass(slots=True, eq=False)
class HandlerCall:
    """One run of a handler for one delivery. ``call_next()`` returns the handler's result."""

    context: Context
    payload: Any
    headers: dict[str, str]
    """The headers the job was enqueued with (empty if none)."""
    kind: Literal["process"] = "process"
    state: dict[str, Any] = field(default_factory=dict)

    job_id = Forward[str]("context.job_id")
    queue = Forward[str]("context.queue")
    name = Forward[str]("context.name")
    attempt = Forward[int]("context.attempt")
    deliveries = Forward[int]("context.deliveries")


Middleware: TypeAlias = Callable[[Any, Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""``async def mw(call: EnqueueCall | HandlerCall, call_next) -> Any``."""

Phase = Literal["enqueue", "process", "both"]


class Middlewares:
    """The middlewares of one app, in registration order (first = outermost)."""

    __slots__ = ("enqueue", "process")

    def __init__(self) -> None:
        self.enqueue: list[Middleware] = []
        self.process: list[Middleware] = []

    def add(self, fn: Middleware, on: Phase = "both") -> None:
        """Raises ``ConfigurationError`` for something that is not an async function of
        ``(call, call_next)`` or an unknown ``on``."""
        if not callable(fn):
            raise ConfigurationError(f"a middleware must be callable, not {fn!r}")
        if on not in ("enqueue", "process", "both"):
            raise ConfigurationError(f"on must be 'enqueue', 'process' or 'both', not {on!r}")
        if on in ("enqueue", "both"):
            self.enqueue.append(fn)
        if on in ("process", "both"):
            self.process.append(fn)

    async def around_enqueue(
        self, call: EnqueueCall, inner: Callable[[], Awaitable[list[JobHandle]]]
    ) -> list[JobHandle]:
        handles: list[JobHandle] = await _chain(self.enqueue, call, inner)
        return handles

    async def around_handler(self, call: HandlerCall, inner: Callable[[], Awaitable[Any]]) -> Any:
        return await _chain(self.process, call, inner)


async def _chain(chain: list[Middleware], call: Any, inner: Callable[[], Awaitable[Any]]) -> Any:
    # Snapshot: a middleware added while a call runs applies from the next call on.
    stack = tuple(chain)

    async def step(index: int) -> Any:
        if index == len(stack):
            return await inner()
        return await stack[index](call, lambda: step(index + 1))

    return await step(0)


_by_broker: weakref.WeakKeyDictionary[Broker, Middlewares] = weakref.WeakKeyDictionary()


def middlewares_of(broker: Broker) -> Middlewares | None:
    """The middlewares registered for ``broker``'s app, or None if there are none (the hot
    path tests this and calls straight through)."""
    found = _by_broker.get(broker)
    if found is None or not (found.enqueue or found.process):
        return None
    return found


def register(broker: Broker, fn: Middleware, on: Phase = "both") -> None:
    found = _by_broker.get(broker)
    if found is None:
        found = _by_broker[broker] = Middlewares()
    found.add(fn, on)


def share_middlewares(source: Broker, target: Broker) -> None:
    """Makes ``target`` run the middlewares of ``source``, present and future (the sync
    facade's own broker runs its app's)."""
    found = _by_broker.get(source)
    if found is None:
        found = _by_broker[source] = Middlewares()
    _by_broker[target] = found
