"""One client's event stream: its backlog from Redis, then the shared feed, without a gap
or a duplicate, and the end of a job's stream after its terminal event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec

import streamq
from server.sse import EventHub, Subscriber, encode_event, entry_key

_READ_COUNT = 1000
_encoder = msgspec.json.Encoder()


async def follow(
    hub: EventHub,
    sub: Subscriber,
    queue: str,
    after: str | None,
    *,
    job: str | None,
    heartbeat: float,
    redis_slots: asyncio.Semaphore,
    redacted: bool = False,
) -> AsyncIterator[bytes]:
    """The SSE bytes of ``queue`` (or of one ``job``) after entry id ``after``, live.

    ``after`` None means "from now": what the feed delivers after ``sub`` joined, with no
    Redis read of its own (so a crowd of new clients costs Redis nothing). A job stream ends
    after the job's terminal event; a queue stream runs until the client leaves or the
    server shuts down. ``sub`` must already be subscribed (so nothing that happens while the
    backlog is read can be missed). Redis reads take a slot of ``redis_slots``. ``redacted``
    (a ``meta`` reader) leaves error texts out.
    """
    app = hub.app
    live_only = after is None
    last_id = sub.start_cursor if after is None else after
    last = entry_key(last_id)
    checked_record = False
    yield b"retry: 2000\n" + comment("connected")
    while True:
        if live_only:
            live_only = False  # only the first time; after an overflow, catch up from Redis
            events: list[streamq.Event] = []
        else:
            sub.reset()
            events = await _shielded_read(app, queue, last_id, redis_slots)
        # 1. Backlog: everything after last_id that Redis still holds.
        while events:
            out: list[bytes] = []
            ended = False
            for event in events:
                last_id = event.id
                # Audit records stay in the stream for operators (``streamq tail``), not clients.
                if event.type != "audit" and (job is None or event.job == job):
                    out.append(encode_event(event).for_reader(redacted))
                    if job is not None and event.type in streamq.TERMINAL_STATES:
                        ended = True
                        break
            last = entry_key(last_id)
            if out:
                yield b"".join(out)
            if ended:
                return
            if len(events) < _READ_COUNT:
                break
            events = await _shielded_read(app, queue, last_id, redis_slots)
        # 2. A finished job whose terminal event is gone from the stream still gets an ending.
        if job is not None and not checked_record:
            checked_record = True
            async with redis_slots:
                with anyio.CancelScope(shield=True):
                    record = await app.job(queue, job)
            if record is None or record.state in streamq.TERMINAL_STATES:
                tail = await _shielded_read(app, queue, last_id, redis_slots)
                mine = [e for e in tail if e.job == job]
                if mine:
                    yield b"".join(encode_event(e).for_reader(redacted) for e in mine)
                    if any(e.type in streamq.TERMINAL_STATES for e in mine):
                        return
                if record is not None:
                    yield snapshot_message(record, redacted=redacted)
                return
        # 3. Live: what the shared feed hands over, skipping ids already sent.
        while True:
            ready = await sub.wait(heartbeat)
            if sub.closed:
                return
            if not ready:
                yield comment("keep-alive")
                continue
            if sub.overflowed:
                break  # fell behind: back to reading Redis from last_id
            items = sub.take()
            if items and items[0].key > last:
                fresh = items
            else:
                fresh = [e for e in items if e.key > last]
            if not fresh:
                continue
            if job is not None:
                for index, item in enumerate(fresh):
                    if item.type in streamq.TERMINAL_STATES:
                        yield b"".join(e.for_reader(redacted) for e in fresh[: index + 1])
                        return
            last_id, last = fresh[-1].id, fresh[-1].key
            yield b"".join(e.for_reader(redacted) for e in fresh)


async def _shielded_read(
    app: streamq.App, queue: str, after: str, redis_slots: asyncio.Semaphore
) -> list[streamq.Event]:
    """One non-blocking read of the events stream that a client leaving cannot interrupt
    (a cancelled redis-py read may leave its connection unusable and unreturned)."""
    events: list[streamq.Event] = []
    async with redis_slots:
        with anyio.CancelScope(shield=True):
            events = await app.read_events(queue, after=after, count=_READ_COUNT)
    return events


def comment(text: str) -> bytes:
    return b": " + text.encode() + b"\n\n"


def snapshot_message(job: Any, *, redacted: bool = False) -> bytes:
    """A final message without an id for a job whose terminal event was trimmed away."""
    body = {"job": job.id, "queue": job.queue, "type": job.state, "name": job.name}
    if job.error and not redacted:
        body["error"] = job.error
    return b"event: %s\ndata: %s\n\n" % (job.state.encode(), _encoder.encode(body))
