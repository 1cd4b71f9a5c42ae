"""Job handles for producers, and the waiters woken by the shared event feed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any

from streamq import _admin, _keys
from streamq._connection import as_text, broker_errors
from streamq._errors import JobCancelled, JobFailed, JobNotFound
from streamq._events import EventFollower, Subscription, entry_before, event_feeds
from streamq._types import TERMINAL_STATES, Event, Job

if TYPE_CHECKING:
    from streamq._broker import Broker

__all__ = ["JobHandle", "Waiters", "waiters_of"]

log = logging.getLogger(__name__)

# A waiter re-reads the job's state this often in case an event was trimmed away unseen.
_SAFETY_POLL = 2.0


@dataclass(eq=False, repr=False)
class JobHandle:
    """A reference to one job: read its state, wait for its result, cancel it, follow it."""

    broker: Broker
    queue: str
    id: str
    _: KW_ONLY
    name: str | None = None
    deduplicated: bool = False
    state_at_enqueue: str | None = None

    def __repr__(self) -> str:
        return f"JobHandle({self.queue!r}, {self.id!r}, deduplicated={self.deduplicated})"

    async def state(self) -> str | None:
        """The job's state, or None if there is no record of it."""
        await self.broker.connect()
        with broker_errors(f"reading job {self.id}"):
            raw = await self.broker.redis.hget(_keys.job(self.queue, self.id), "state")
        return as_text(raw) if raw else None

    async def info(self) -> Job | None:
        return await _admin.read_job(self.broker, self.queue, self.id)

    async def cancel(self) -> bool:
        return await _admin.cancel(self.broker, self.queue, self.id)

    async def result(self, timeout: float | None = 30.0) -> Any:
        """Waits for the job to finish and returns its result.

        Raises ``JobFailed`` (dead-lettered), ``JobCancelled``, ``JobNotFound``, or
        ``TimeoutError`` after ``timeout`` seconds (None waits for ever)."""
        job = await waiters_of(self.broker).wait(self.queue, self.id, timeout)
        if job.state == "completed":
            return job.result
        if job.state == "cancelled":
            raise JobCancelled(self.id)
        raise JobFailed(self.id, job.error, job.reason)

    async def wait(self, timeout: float | None = 30.0) -> Job:
        """Waits for the job to finish, whatever the outcome; returns its record."""
        return await waiters_of(self.broker).wait(self.queue, self.id, timeout)

    async def events(self) -> AsyncIterator[Event]:
        """This job's events from its first one, until its terminal event."""
        await self.broker.connect()
        with broker_errors(f"reading job {self.id}"):
            first = await self.broker.redis.hget(_keys.job(self.queue, self.id), "first_event")
        if first is None:
            raise JobNotFound(f"no job {self.id} on queue {self.queue}")
        follower = EventFollower(self.broker, self.queue, entry_before(as_text(first)), job=self.id)
        try:
            while not follower.closed:
                for event in await follower.next_batch(None):
                    yield event
                    if event.terminal:
                        return
        finally:
            follower.close()


class Waiters:
    """Waits on jobs' outcomes through the broker's shared event feed (one events-stream
    reader per queue, not one connection per waiter), so a thousand callers of ``result()``
    cost one blocked connection, shared with every other reader of that queue's events."""

    def __init__(self, broker: Broker) -> None:
        self._feeds = event_feeds(broker)
        self._futures: dict[tuple[str, str], list[asyncio.Future[None]]] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._subscribing = asyncio.Lock()

    @property
    def _broker(self) -> Broker:
        return self._feeds.broker

    async def wait(self, queue: str, job_id: str, timeout: float | None) -> Job:
        await self._broker.connect()
        await self._subscribe(queue)
        key = (queue, job_id)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        mine: list[asyncio.Future[None]] = []
        try:
            while True:
                fut: asyncio.Future[None] = loop.create_future()
                mine.append(fut)
                self._futures.setdefault(key, []).append(fut)
                # Registered first, then read: an outcome after this point wakes the future.
                job = await _admin.read_job(self._broker, queue, job_id)
                if job is None:
                    raise JobNotFound(f"no job {job_id} on queue {queue}")
                if job.state in TERMINAL_STATES:
                    return job
                left = (
                    _SAFETY_POLL if deadline is None else min(_SAFETY_POLL, deadline - loop.time())
                )
                if left <= 0:
                    raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fut, left)
        finally:
            self._forget(key, mine)

    def _forget(self, key: tuple[str, str], mine: list[asyncio.Future[None]]) -> None:
        futures = self._futures.get(key, [])
        for fut in mine:
            fut.cancel()
            futures.remove(fut)
        if not futures:
            self._futures.pop(key, None)

    async def _subscribe(self, queue: str) -> None:
        if self._subscribed(queue):
            return
        async with self._subscribing:  # concurrent first waits on a queue subscribe once
            if not self._subscribed(queue):
                self._subscriptions[queue] = await self._feeds.subscribe(queue, self._waker(queue))

    def _subscribed(self, queue: str) -> bool:
        sub = self._subscriptions.get(queue)
        return sub is not None and sub.active

    def _waker(self, queue: str) -> Callable[[list[Event]], None]:
        """Wakes the waiters of every job of ``queue`` whose terminal event is delivered."""

        def wake(events: list[Event]) -> None:
            for event in events:
                if event.terminal:
                    for fut in self._futures.get((queue, event.job), ()):
                        if not fut.done():
                            fut.set_result(None)

        return wake

    async def close(self) -> None:
        """Leaves every feed and stops the broker's feeds (the app is closing)."""
        subscriptions = list(self._subscriptions.values())
        self._subscriptions.clear()
        for sub in subscriptions:
            sub.close()
        await self._feeds.close()


_waiters: weakref.WeakKeyDictionary[Broker, Waiters] = weakref.WeakKeyDictionary()


def waiters_of(broker: Broker) -> Waiters:
    """The broker's waiters (one events reader per queue for every handle on that broker)."""
    found = _waiters.get(broker)
    if found is None:
        found = _waiters[broker] = Waiters(broker)
    return found
