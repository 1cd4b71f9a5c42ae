"""``streamq tail Q``: a queue's events as they happen (one line each, or NDJSON)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import msgspec

from streamq._events import EventFollower
from streamq._types import Event
from streamq.cli._output import UsageError, timestamp

if TYPE_CHECKING:
    from streamq._app import App

EVENT_TYPES = (
    "scheduled",
    "queued",
    "active",
    "progress",
    "log",  # a line of a job's log (ctx.log)
    "completed",
    "retrying",
    "dead",
    "cancelled",
    "reclaimed",
    "waiting-children",
    "paused",
    "resumed",
    "audit",  # a write or admin call through the server (no job of its own)
)
_COLOURS = {"completed": "32", "dead": "31", "retrying": "33", "cancelled": "35", "reclaimed": "36"}
_json = msgspec.json.Encoder()
# What XREAD takes after an id: a stream entry id, or just its millisecond part.
_EVENT_ID = re.compile(r"^\d+(-\d+)?$")


def parse_since(value: str) -> str:
    """The event id to read after: ``start`` (everything kept), ``$`` (new events only) or an
    event id; raises UsageError for anything else (never Redis's own error)."""
    if value == "start":
        return "0-0"
    if value == "$" or _EVENT_ID.match(value):
        return value
    raise UsageError(f"expected 'start', '$' or an event id like 1733140000000-0, not {value!r}")


def parse_types(values: list[str] | None) -> set[str] | None:
    if not values:
        return None
    types = {t.strip() for v in values for t in v.split(",") if t.strip()}
    unknown = sorted(types - set(EVENT_TYPES))
    if unknown:
        raise UsageError(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    return types


def line(ev: Event, colour: bool) -> str:
    detail = " ".join(
        x
        for x in (
            f"{ev.progress:g}%" if ev.progress is not None else "",
            ev.message or "",
            ev.error or "",
        )
        if x
    )
    kind = f"{ev.type:<10}"
    if colour and ev.type in _COLOURS:
        kind = f"\x1b[{_COLOURS[ev.type]}m{kind}\x1b[0m"
    text = f"{timestamp(ev.at)}  {kind} {ev.name:<18} {ev.job}  #{ev.attempt}"
    return f"{text}  {detail}" if detail else text


async def command(app: App, args: argparse.Namespace) -> int:
    """Follows events until Ctrl-C, ``--count`` matching events, or ``--duration`` seconds."""
    types = parse_types(args.type)
    after = parse_since(args.since)
    deadline = time.monotonic() + args.duration if args.duration else None
    colour = sys.stdout.isatty() and not args.json
    seen = 0
    # Through the process's one events reader of the queue ("$": from when it joins).
    follower = EventFollower(app.broker, args.queue, after, job=args.job)
    with _interrupts() as stopped, contextlib.closing(follower):
        while not stopped.is_set() and (deadline is None or time.monotonic() < deadline):
            # Short waits keep --duration and Ctrl-C responsive.
            for ev in await follower.next_batch(0.5):
                if types and ev.type not in types:
                    continue
                if args.json:
                    sys.stdout.write(_json.encode(ev).decode() + "\n")
                else:
                    sys.stdout.write(line(ev, colour) + "\n")
                seen += 1
                if args.count and seen >= args.count:
                    sys.stdout.flush()
                    return 0
            sys.stdout.flush()
    return 130 if stopped.is_set() else 0


@contextlib.contextmanager
def _interrupts() -> Iterator[asyncio.Event]:
    """Ctrl-C / SIGTERM set a flag the loop checks between reads: cancelling a blocked
    redis-py read is not reliable, a flag is."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stopped.set)
            installed.append(sig)
        except (ValueError, RuntimeError):  # not the main thread (tests call main() in one)
            pass
    try:
        yield stopped
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
