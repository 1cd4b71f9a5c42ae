"""``streamq enqueue QUEUE NAME``: one job, printed as JSON.

Checked like the HTTP API checks it, before anything is sent: with ``--app`` the name must be a
task of that queue (else exit 2 naming the known ones) and the payload must fit the task's type
(else exit 2 naming the field path); the delay and priority have the API's bounds. Without
``--app`` the tasks the live workers of the queue serve are the reference (see
:func:`live_tasks`): with workers running, an unknown name is refused (exit 2) naming theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from pathlib import Path
from typing import Any

from streamq._app import App
from streamq._roster import live_tasks as roster_tasks
from streamq._types import LANES, lane_of
from streamq.cli._app_spec import load_app
from streamq.cli._output import UsageError
from streamq.cli._session import existing_redis_url

# The HTTP API's bound for delays (server.schemas.Seconds): a year and a day.
MAX_DELAY_S = 366 * 86400.0


def command(args: argparse.Namespace) -> int:
    payload = _payload(args.payload)
    if args.app:
        app = load_app(args.app)
        # Name and payload before any connection: a typo is refused even with no server.
        app.task_def(args.queue, args.name).coerce(payload)
    else:
        app = App("cli")
    app.use_redis_url(existing_redis_url(args))

    async def go() -> dict[str, Any]:
        try:
            if not args.app:
                await _register_untyped(app, args.queue, args.name)
            h = await app.enqueue(
                args.name,
                payload,
                id=args.id,
                queue=args.queue,
                priority=args.priority,
                delay=args.delay,
            )
            return {
                "id": h.id,
                "queue": h.queue,
                "state": h.state_at_enqueue,
                "deduplicated": h.deduplicated,
            }
        finally:
            await app.close()

    print(json.dumps(asyncio.run(go())))
    return 0


async def live_tasks(app: App, queue: str) -> dict[str, dict[str, Any]] | None:
    """The tasks (name -> payload JSON schema) the live workers of ``queue`` serve, or None
    when no live worker publishes them (none running, or workers of an older streamq): then
    any name is accepted, as before. Workers publish them with their heartbeat (see
    ``streamq._roster``)."""
    known = await roster_tasks(app.broker, queue)
    if known is None:
        return None
    return {name: json.loads(schema) for name, schema in known.items()}


async def _register_untyped(app: App, queue: str, name: str) -> None:
    """Without the app's code there is no type to check the payload against: unless the live
    workers say which names the queue takes, any name and payload are accepted."""
    known = await live_tasks(app, queue)
    if known is not None and name not in known:
        raise UsageError(
            f"unknown job {name!r} on queue {queue!r}; known: {', '.join(sorted(known)) or 'none'}"
        )

    def untyped(ctx: Any, payload: Any) -> None: ...

    app.task(name, queue=queue)(untyped)


def _payload(text: str | None) -> Any:
    """The --payload JSON: given inline, as ``@file``, or ``-`` for standard input."""
    if text is None:
        return None
    source = "--payload"
    if text == "-":
        text, source = sys.stdin.read(), "standard input"
    elif text.startswith("@"):
        try:
            text, source = Path(text[1:]).read_text(), text[1:]
        except OSError as exc:
            raise UsageError(f"cannot read the payload file: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the payload in {source} is not JSON: {exc}") from exc


def parse_priority(value: str) -> str | int:
    """``--priority``: a lane name or 1-10, as the API takes it; raises UsageError otherwise."""
    priority: str | int = int(value) if value.isdigit() else value
    try:
        lane_of(priority)
    except Exception:
        raise UsageError(f"expected one of {', '.join(LANES)} or 1-10, not {value!r}") from None
    return priority


def parse_delay(text: str) -> float:
    """``--delay``: seconds from 0 to a year and a day, as the API takes them; raises
    UsageError otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"expected seconds, not {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_DELAY_S):
        raise UsageError(f"expected 0 to {MAX_DELAY_S:.0f} seconds, not {text}")
    return value
