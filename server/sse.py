"""Server-sent events: one shared reader per queue fans events out to every client.

However many clients watch a queue, the server runs a single blocking XREAD loop for it (a
QueueFeed); each event is encoded to SSE bytes once and handed to every Subscriber. A client
joins in three steps that leave no gap: subscribe to the feed (buffering from now), read the
backlog from Redis after its ``Last-Event-ID``, then drain the buffer skipping ids already sent.

Memory stays bounded: a subscriber buffers at most ``buffer`` events. One that falls further
behind is marked overflowed and drops its buffer; its stream then catches up by reading Redis
directly from its last id (``server.streams``), so a slow client loses nothing (while the
entries exist) and cannot make the server hold an unbounded queue for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

import anyio
import msgspec
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

import streamq
from server.schemas import EventView

log = logging.getLogger(__name__)

TERMINAL = frozenset({"completed", "dead", "cancelled"})
_MAX_SEQ = 2**64 - 1
_READ_COUNT = 1000
# Feeds stop by flag, never by cancelling a blocked read (redis-py does not reliably give the
# connection back when a read is cancelled), so this bounds how long a stop can take.
_BLOCK_MS = 500
_encoder = msgspec.json.Encoder()

EntryKey = tuple[int, int]


def entry_key(entry_id: str) -> EntryKey:
    """A stream entry id as a comparable (milliseconds, sequence) pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def entry_id_at(ms: int) -> str:
    """An id just before every entry of millisecond ``ms`` (for "after" reads)."""
    return f"{ms - 1}-{_MAX_SEQ}" if ms > 0 else "0-0"


class Encoded(msgspec.Struct, frozen=True):
    """One event, encoded once as an SSE message and shared by every client."""

    id: str
    key: EntryKey
    job: str
    type: str
    data: bytes
    # The same message without the error text, for ``meta`` readers (None: nothing withheld).
    meta_data: bytes | None = None

    def for_reader(self, redacted: bool) -> bytes:
        return self.meta_data if redacted and self.meta_data is not None else self.data


def encode_event(event: streamq.Event) -> Encoded:
    view = msgspec.convert(event, EventView, from_attributes=True)
    head = b"id: %s\nevent: %s\ndata: " % (event.id.encode(), event.type.encode())
    data = head + _encoder.encode(view) + b"\n\n"
    meta = None
    if view.error is not None:
        meta = head + _encoder.encode(msgspec.structs.replace(view, error=None)) + b"\n\n"
    return Encoded(event.id, entry_key(event.id), event.job, event.type, data, meta)


class Subscriber:
    """A bounded buffer of encoded events for one client (optionally one job's only)."""

    def __init__(self, job: str | None, limit: int) -> None:
        self.job = job
        self.limit = limit
        self.buffer: deque[Encoded] = deque()
        self.overflowed = False
        self.closed = False
        self.feed: QueueFeed | None = None
        # The feed's position when this subscriber joined: it receives everything after it.
        self.start_cursor = "0-0"
        self._wakeup = asyncio.Event()

    def push(self, batch: list[Encoded]) -> None:
        if self.overflowed or self.closed:
            return
        if self.job is not None:
            batch = [e for e in batch if e.job == self.job]
            if not batch:
                return
        if len(self.buffer) + len(batch) > self.limit:
            # Too far behind: drop everything; the stream catches up from Redis instead.
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

    async def wait(self, timeout: float) -> bool:
        """True when there is something to look at (events, overflow, close), False on timeout."""
        if not (self.buffer or self.overflowed or self.closed):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)
        self._wakeup.clear()
        return bool(self.buffer or self.overflowed or self.closed)

    def take(self) -> list[Encoded]:
        items = list(self.buffer)
        self.buffer.clear()
        return items


class QueueFeed:
    """The single XREAD loop of one queue, dispatching to its subscribers."""

    def __init__(self, app: streamq.App, queue: str) -> None:
        self.app = app
        self.queue = queue
        self.subscribers: set[Subscriber] = set()
        self.cursor = "0-0"
        self.stopping = False
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Start just before "now" by Redis's clock: every entry added from here on is read,
        # and whatever a subscriber needs from before comes from its own backlog read.
        self.cursor = await now_cursor(self.app)
        # The loop's first check of ``subscribers`` runs after the caller added its own.
        self.task = asyncio.create_task(self._run(), name=f"sse-feed:{self.queue}")

    async def _run(self) -> None:
        failures = 0
        while self.subscribers and not self.stopping:
            try:
                events = await self.app.read_events(
                    self.queue, after=self.cursor, count=_READ_COUNT, block_ms=_BLOCK_MS
                )
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("event feed for queue %s failed: %s", self.queue, exc)
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                continue
            if not events:
                continue
            self.cursor = events[-1].id
            # Audit records stay in the stream for operators (``streamq tail``), not clients.
            batch = [encode_event(e) for e in events if e.type != "audit"]
            if not batch:
                continue
            for sub in list(self.subscribers):
                sub.push(batch)


async def now_cursor(app: streamq.App) -> str:
    """An entry id just before the current millisecond on the Redis server."""
    await app.connect()
    seconds, micros = await app.redis.time()
    return entry_id_at(int(seconds) * 1000 + int(micros) // 1000)


class EventHub:
    """The feeds of every watched queue; a feed runs while it has subscribers."""

    def __init__(self, app: streamq.App, *, buffer: int) -> None:
        self.app = app
        self.buffer = buffer
        self.feeds: dict[str, QueueFeed] = {}
        # Every feed loop still running, including ones already replaced or finishing their
        # last read, so shutdown can wait for each (no read left holding a connection).
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        self._lock = asyncio.Lock()

    async def subscribe(self, queue: str, job: str | None = None) -> Subscriber:
        """A subscriber receiving every event of ``queue`` read from now on."""
        sub = Subscriber(job, self.buffer)
        if self.closed:
            sub.close()
            return sub
        async with self._lock:
            feed = self.feeds.get(queue)
            if feed is None or feed.task is None or feed.task.done():
                feed = QueueFeed(self.app, queue)
                await feed.start()
                self.feeds[queue] = feed
                if feed.task is not None:
                    self.tasks.add(feed.task)
                    feed.task.add_done_callback(self.tasks.discard)
            # No await from here on: the feed cannot dispatch between these two lines.
            feed.subscribers.add(sub)
            sub.start_cursor = feed.cursor
        sub.feed = feed
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        feed, sub.feed = sub.feed, None
        if feed is None:
            return
        feed.subscribers.discard(sub)
        if not feed.subscribers and self.feeds.get(feed.queue) is feed:
            # The loop ends by itself after its current read; a newcomer starts a new feed.
            del self.feeds[feed.queue]

    @property
    def subscriber_count(self) -> int:
        return sum(len(f.subscribers) for f in self.feeds.values())

    async def close(self) -> None:
        """End every stream (server shutdown) and stop the feeds."""
        self.closed = True
        feeds = list(self.feeds.values())
        self.feeds.clear()
        for feed in feeds:
            feed.stopping = True
            for sub in feed.subscribers:
                sub.close()
            feed.subscribers.clear()
        tasks = list(self.tasks)
        if tasks:
            # Each loop ends after its current read; cancel only one that hangs far beyond.
            _, stuck = await asyncio.wait(tasks, timeout=10 * _BLOCK_MS / 1000)
            for task in stuck:
                task.cancel()


class EventStreamResponse(Response):
    """A ``text/event-stream`` response that ends when the client goes away.

    It listens for ``http.disconnect`` itself, so a departed client is noticed at once rather
    than at the next heartbeat; ``on_close`` runs exactly once however the stream ends.
    """

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        # No Response.__init__: it would declare a Content-Length for the empty body.
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        self.chunks = chunks
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if scope.get("method") == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(watch_disconnect)
                await self._pump(send)
                tg.cancel_scope.cancel()
        finally:
            self.on_close()

    async def _pump(self, send: Send) -> None:
        async with contextlib.aclosing(self.chunks) as chunks:  # type: ignore[type-var]
            try:
                async for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                return  # the client went away while we wrote
