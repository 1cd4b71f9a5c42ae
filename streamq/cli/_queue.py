"""``streamq queue drain|clean QUEUE``: destructive, so they ask first on a terminal (``--yes``
skips the question; without a terminal, ``--yes`` is required)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from streamq.cli._output import UsageError, emit_json

if TYPE_CHECKING:
    from streamq._app import App


def confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{question}: pass --yes to confirm (no terminal to ask on)")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


async def command(app: App, args: argparse.Namespace) -> int:
    if args.action == "drain":
        question = f"remove every waiting job (queued, scheduled, retrying) of {args.queue}?"
    else:
        what = args.state or "completed, dead and cancelled"
        question = f"remove {what} jobs of {args.queue} finished over {args.older_than:g}s ago?"
    if not confirm(question, args.yes):
        print("nothing done")
        return 1
    if args.action == "drain":
        count = await app.drain(args.queue)
    else:
        count = await app.clean(args.queue, args.older_than, args.state)
    if args.json:
        emit_json({"queue": args.queue, "action": args.action, "removed": count})
    else:
        print(f"removed {count} jobs from {args.queue}")
    return 0
