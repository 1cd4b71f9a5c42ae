"""Server-sent events: the broker's one reader per queue fans events out to every client.

However many clients watch a queue, the process runs a single blocking XREAD loop for it (the
broker's shared feed, ``streamq.event_feeds``, which job waiters and followers use too); the
server subscribes to it once per watched queue (a QueueFeed), encodes each event to SSE bytes
once and hands it to every Subscriber. A client
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
from collections.abc import AsyncIterator, Callable

import anyio
import msgspec
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

import streamq
from server.schemas import EventView

log = logging.getLogger(__name__)

_MAX_SEQ = 2**64 - 1
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


class Subscriber(streamq.EventBuffer[Encoded]):
    """One client's bounded buffer of encoded events (optionally one job's only)."""

    def __init__(self, job: str | None, limit: int) -> None:
        super().__init__(job, limit)
        self.feed: QueueFeed | None = None
        # The feed's position when this subscriber joined: it receives everything after it.
        self.start_cursor = "0-0"


class QueueFeed:
    """One queue's fan-out to SSE clients: a single subscriber of the broker's shared event
    feed (``streamq.event_feeds``), encoding each batch once for every client."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.subscribers: set[Subscriber] = set()
        # The last entry id handed over: a subscriber joining now receives everything after.
        self.cursor = "0-0"
        self.subscription: streamq.Subscription | None = None

    @property
    def active(self) -> bool:
        return self.subscription is not None and self.subscription.active

    def deliver(self, events: list[streamq.Event]) -> None:
        self.cursor = events[-1].id
        # Audit records stay in the stream for operators (``streamq tail``), not clients.
        batch = [encode_event(e) for e in events if e.type != "audit"]
        if not batch:
            return
        for sub in list(self.subscribers):
            sub.push(batch)

    def end(self) -> None:
        """The shared feed stopped (the app is closing): end every client's stream."""
        for sub in self.subscribers:
            sub.close()


class EventHub:
    """The SSE clients of every watched queue, grouped per queue on the shared event feed."""

    def __init__(self, app: streamq.App, *, buffer: int) -> None:
        self.app = app
        self.buffer = buffer
        self.feeds: dict[str, QueueFeed] = {}
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
            if feed is None or not feed.active:
                feed = QueueFeed(queue)
                feed.subscription = await streamq.event_feeds(self.app.broker).subscribe(
                    queue, feed.deliver, on_close=feed.end
                )
                feed.cursor = feed.subscription.start
                self.feeds[queue] = feed
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
        if not feed.subscribers:
            if feed.subscription is not None:
                feed.subscription.close()
            if self.feeds.get(feed.queue) is feed:
                del self.feeds[feed.queue]

    @property
    def subscriber_count(self) -> int:
        return sum(len(f.subscribers) for f in self.feeds.values())

    async def close(self) -> None:
        """End every stream (server shutdown) and wait for the feeds' reads to end."""
        self.closed = True
        feeds = list(self.feeds.values())
        self.feeds.clear()
        for feed in feeds:
            feed.end()
            feed.subscribers.clear()
            if feed.subscription is not None:
                feed.subscription.close()
        await streamq.event_feeds(self.app.broker).settle()


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
