"""Events: the one reader of a queue's events stream.

``parse_event`` turns a stream entry into an ``Event``. ``EventFeeds`` (one per broker, found
with ``event_feeds``) runs at most one blocking XREAD loop per queue per process and hands each
batch it reads to every subscriber of that queue: job waiters (``job.result()``), followers
(``app.events()``, ``job.events()``, ``streamq tail``) and the server's SSE hub. However many of
them watch a queue, Redis sees one blocked connection for it.

A subscriber receives every entry after the feed's position when it joined
(``Subscription.start``). ``EventFollower`` adds what a reader starting from an older id needs:
it subscribes first (buffering from then on), reads the backlog from Redis after its ``after``
id, then drains the buffer skipping ids already returned, so nothing is missed or repeated. A
follower that falls more than ``buffer`` events behind drops its buffer and catches up from
Redis again, so memory stays bounded however slow the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from streamq import _keys
from streamq._connection import broker_errors, read_entries, stream_entries
from streamq._errors import BrokerUnavailable
from streamq._types import Event

if TYPE_CHECKING:
    from streamq._broker import Broker

log = logging.getLogger(__name__)

_MAX_SEQ = 2**64 - 1
READ_COUNT = 1000
# Feeds stop by flag, never by cancelling a blocked read (redis-py does not reliably give the
# connection back when a read is cancelled), so this bounds how long a stop can take.
BLOCK_MS = 500

EntryKey = tuple[int, int]
Deliver = Callable[[list[Event]], None]


def parse_event(queue: str, entry_id: bytes, fields: dict[bytes, bytes]) -> Event:
    """The ``Event`` of one entry of ``queue``'s events stream."""

    def text(name: bytes) -> str | None:
        value = fields.get(name)
        return value.decode() if value is not None else None

    eid = entry_id.decode()
    progress = text(b"p")
    return Event(
        id=eid,
        queue=queue,
        type=text(b"t") or "",
        job=text(b"j") or "",
        name=text(b"n") or "",
        attempt=int(fields.get(b"a", b"0")),
        at=int(eid.partition("-")[0]) / 1000.0,
        progress=float(progress) if progress is not None else None,
        message=text(b"m") or text(b"r"),
        error=text(b"e"),
    )


def entry_key(entry_id: str) -> EntryKey:
    """A stream entry id as a comparable (milliseconds, sequence) pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def entry_id_at(ms: int) -> str:
    """An id just before every entry of millisecond ``ms`` (for "after" reads)."""
    return f"{ms - 1}-{_MAX_SEQ}" if ms > 0 else "0-0"


def entry_before(entry_id: str) -> str:
    """The id just before ``entry_id``: reading "after" it starts with that entry."""
    ms, seq = entry_key(entry_id)
    return f"{ms}-{seq - 1}" if seq > 0 else entry_id_at(ms)


async def read_events(
    broker: Broker, queue: str, after: str, count: int, block_ms: int | None
) -> list[Event]:
    """Events of ``queue`` after entry id ``after``, waiting up to ``block_ms`` for one."""
    await broker.connect()
    with broker_errors(f"reading events of {queue}"):
        reply = await broker.redis.xread({_keys.events(queue): after}, count=count, block=block_ms)
    return [parse_event(queue, eid, f) for _, entries in read_entries(reply) for eid, f in entries]


async def last_event_id(broker: Broker, queue: str) -> str:
    """The id of the newest entry of ``queue``'s events stream ("0-0" when it is empty)."""
    await broker.connect()
    with broker_errors(f"reading events of {queue}"):
        last = stream_entries(await broker.redis.xrevrange(_keys.events(queue), count=1))
    return last[0][0].decode() if last else "0-0"


class Subscription:
    """One subscriber of a queue's feed: ``deliver`` gets every batch read after ``start``."""

    def __init__(self, feed: QueueFeed, deliver: Deliver, on_close: Callable[[], None]) -> None:
        self.feed: QueueFeed | None = feed
        self.deliver = deliver
        self.on_close = on_close
        self.start = feed.cursor

    @property
    def active(self) -> bool:
        return self.feed is not None

    def close(self) -> None:
        """Leaves the feed (idempotent); the feed stops after its read once nobody listens."""
        feed, self.feed = self.feed, None
        if feed is not None:
            feed.leave(self)


class QueueFeed:
    """The single XREAD loop of one queue, dispatching each batch to its subscribers."""

    def __init__(self, feeds: EventFeeds, queue: str, cursor: str) -> None:
        self.feeds = feeds
        self.queue = queue
        self.cursor = cursor
        self.subscribers: list[Subscription] = []
        self.stopping = False
        self.task: asyncio.Task[None] | None = None

    def leave(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self.subscribers.remove(sub)
        if not self.subscribers:
            self.feeds.retire(self)

    async def run(self, broker: Broker) -> None:
        failures = 0
        while self.subscribers and not self.stopping:
            try:
                events = await read_events(broker, self.queue, self.cursor, READ_COUNT, BLOCK_MS)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: keep trying; readers also poll
                failures += 1
                log.warning("event feed for queue %s failed: %s", self.queue, exc)
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                continue
            if not events:
                continue
            # No await from here to the end of the loop body: cursor and dispatch move together.
            self.cursor = events[-1].id
            for sub in list(self.subscribers):
                try:
                    sub.deliver(events)
                except Exception:
                    log.exception("event subscriber of queue %s failed", self.queue)


class EventFeeds:
    """The feeds of one broker: a queue's feed runs while it has subscribers."""

    def __init__(self, broker: Broker) -> None:
        # Weak: the broker is the key these feeds are found under (see event_feeds).
        self._broker_ref = weakref.ref(broker)
        self.feeds: dict[str, QueueFeed] = {}
        # Every loop still running, including retired ones finishing their last read, so
        # close() can wait for each (no read left holding a connection).
        self.tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    @property
    def broker(self) -> Broker:
        broker = self._broker_ref()
        if broker is None:
            raise BrokerUnavailable("the broker these feeds belong to is gone")
        return broker

    async def subscribe(
        self, queue: str, deliver: Deliver, *, on_close: Callable[[], None] = lambda: None
    ) -> Subscription:
        """Calls ``deliver(events)`` for every batch of ``queue``'s events read from now on
        (after ``Subscription.start``); ``on_close`` runs if the feeds are closed under it.
        Raises ``BrokerUnavailable`` when Redis cannot be read to start the feed."""
        broker = self.broker
        async with self._lock:
            feed = self.feeds.get(queue)
            if feed is None or feed.stopping or feed.task is None or feed.task.done():
                # From the newest entry on: whatever a reader needs from before is its own
                # backlog read.
                feed = QueueFeed(self, queue, await last_event_id(broker, queue))
                self.feeds[queue] = feed
                feed.task = asyncio.create_task(feed.run(broker), name=f"events:{queue}")
                self.tasks.add(feed.task)
                feed.task.add_done_callback(self.tasks.discard)
            # No await from here on: the feed cannot dispatch between these lines, so the
            # subscription's start is exactly where its deliveries begin.
            sub = Subscription(feed, deliver, on_close)
            feed.subscribers.append(sub)
        return sub

    def retire(self, feed: QueueFeed) -> None:
        # The loop ends by itself after its current read; a newcomer starts a new feed.
        feed.stopping = True
        if self.feeds.get(feed.queue) is feed:
            del self.feeds[feed.queue]

    async def settle(self) -> None:
        """Waits (boundedly) for the loops of feeds nobody listens to any more to end their
        last read, so none is left holding a connection."""
        live = {f.task for f in self.feeds.values()}
        retired = [t for t in self.tasks if t not in live]
        if retired:
            await asyncio.wait(retired, timeout=10 * BLOCK_MS / 1000)

    async def close(self) -> None:
        """Stops every feed (telling each subscriber through its ``on_close``) and waits for
        the loops to end."""
        feeds = list(self.feeds.values())
        self.feeds.clear()
        for feed in feeds:
            feed.stopping = True
            subscribers, feed.subscribers = feed.subscribers, []
            for sub in subscribers:
                sub.feed = None
                sub.on_close()
        tasks = list(self.tasks)
        if tasks:
            # Each loop ends after its current read; cancel only one that hangs far beyond.
            _, stuck = await asyncio.wait(tasks, timeout=10 * BLOCK_MS / 1000)
            for task in stuck:
                task.cancel()


_feeds: weakref.WeakKeyDictionary[Broker, EventFeeds] = weakref.WeakKeyDictionary()


def event_feeds(broker: Broker) -> EventFeeds:
    """The broker's event feeds: one events reader per queue for everything in this process
    that watches events through that broker (waiters, followers, the server's SSE)."""
    found = _feeds.get(broker)
    if found is None:
        found = _feeds[broker] = EventFeeds(broker)
    return found


class HasJob(Protocol):
    @property
    def job(self) -> str: ...


T = TypeVar("T", bound=HasJob)


class EventBuffer(Generic[T]):
    """A bounded buffer of one reader's events (only ``job``'s if given), filled by a feed
    subscription: events as read (``EventFollower``) or already encoded (the server's SSE).

    A reader more than ``limit`` events behind is marked ``overflowed`` and its buffer is
    dropped: it catches up by reading Redis from its last id instead."""

    def __init__(self, job: str | None, limit: int) -> None:
        self.job = job
        self.limit = limit
        self.buffer: deque[T] = deque()
        self.overflowed = False
        self.closed = False
        self._wakeup = asyncio.Event()

    def push(self, batch: list[T]) -> None:
        if self.overflowed or self.closed:
            return
        if self.job is not None:
            batch = [e for e in batch if e.job == self.job]
            if not batch:
                return
        if len(self.buffer) + len(batch) > self.limit:
            self.overflowed = True
            self.buffer.clear()
        else:
            self.buffer.extend(batch)
        self._wakeup.set()

    def reset(self) -> None:
        """Forget the buffer and any overflow (the caller re-reads Redis from its last id)."""
        self.buffer.clear()
        self.overflowed = False

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    async def wait(self, timeout: float | None) -> bool:
        """True when there is something to look at (events, overflow, close), False after
        ``timeout`` seconds (None: no limit)."""
        if not (self.buffer or self.overflowed or self.closed):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)
        self._wakeup.clear()
        return bool(self.buffer or self.overflowed or self.closed)

    def take(self) -> list[T]:
        items = list(self.buffer)
        self.buffer.clear()
        return items


class EventFollower:
    """Reads ``queue``'s events after entry id ``after`` (``"$"``: from now), then live, in
    order, without a gap or a duplicate; only ``job``'s events if given.

    Call ``await next_batch(timeout)`` (an empty list when nothing came within ``timeout``) and
    ``close()`` when done. Waiting for live events never cancels a Redis read: the shared
    feed reads, so a caller may stop waiting at any time. Raises ``BrokerUnavailable``.
    """

    def __init__(
        self,
        broker: Broker,
        queue: str,
        after: str = "$",
        *,
        job: str | None = None,
        buffer: int = 10_000,
    ) -> None:
        self.broker = broker
        self.queue = queue
        self.after = after
        self.job = job
        self._buffer: EventBuffer[Event] = EventBuffer(job, buffer)
        self._sub: Subscription | None = None
        self._catching_up = after != "$"
        self._backlog_started = False

    async def _start(self) -> None:
        self._sub = await event_feeds(self.broker).subscribe(
            self.queue, self._buffer.push, on_close=self._buffer.close
        )
        if self.after == "$":
            self.after = self._sub.start

    @property
    def closed(self) -> bool:
        """True once the feeds were closed under this follower (it returns nothing more)."""
        return self._buffer.closed

    async def next_batch(self, timeout: float | None = None) -> list[Event]:
        """The next events in order; [] if none came within ``timeout`` seconds (None waits
        until one comes) or the follower was closed."""
        if self._sub is None:
            await self._start()
        while True:
            if self._catching_up:
                if not self._backlog_started:
                    # Everything delivered before this point is in Redis for the read below.
                    self._buffer.reset()
                    self._backlog_started = True
                events = await read_events(self.broker, self.queue, self.after, READ_COUNT, None)
                if len(events) < READ_COUNT:
                    self._catching_up = False
                    self._backlog_started = False
                if events:
                    self.after = events[-1].id
                    mine = [e for e in events if self.job is None or e.job == self.job]
                    if mine:
                        return mine
                continue
            await self._buffer.wait(timeout)
            if self._buffer.overflowed:
                self._catching_up = True
                continue
            last = entry_key(self.after)
            fresh = [e for e in self._buffer.take() if entry_key(e.id) > last]
            if fresh:
                self.after = fresh[-1].id
            return fresh

    def close(self) -> None:
        """Leaves the feed."""
        if self._sub is not None:
            self._sub.close()


async def follow_events(
    broker: Broker, queue: str, after: str = "$", job: str | None = None
) -> AsyncIterator[Event]:
    """``queue``'s events after ``after`` (``"$"``: from now), live, for ever (only ``job``'s
    if given). Raises ``BrokerUnavailable``."""
    follower = EventFollower(broker, queue, after, job=job)
    try:
        while not follower.closed:
            for event in await follower.next_batch(None):
                yield event
    finally:
        follower.close()
