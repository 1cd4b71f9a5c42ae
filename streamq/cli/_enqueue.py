"""``streamq enqueue QUEUE NAME``: one job, printed as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from streamq._app import App
from streamq.cli._app_spec import load_app
from streamq.cli._output import UsageError


def command(args: argparse.Namespace) -> int:
    payload = _payload(args.payload)
    app = load_app(args.app) if args.app else App("cli", redis_url=args.redis_url)
    if not args.app:
        # Without the app's code there is no type to check against: accept any payload.
        def untyped(ctx: Any, payload: Any) -> None: ...

        app.task(args.name, queue=args.queue)(untyped)
    elif args.redis_url:
        app.use_redis_url(args.redis_url)

    async def go() -> dict[str, Any]:
        try:
            h = await app.enqueue(
                args.name,
                payload,
                id=args.id,
                queue=args.queue,
                priority=_priority(args.priority),
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


def _priority(value: str | None) -> str | int | None:
    return int(value) if value and value.isdigit() else value
