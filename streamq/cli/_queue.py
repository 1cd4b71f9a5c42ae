"""``streamq queue drain|clean|delete QUEUE``: destructive, so they ask first on a terminal (``--yes``
skips the question; without a terminal, ``--yes`` is required)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from streamq._dropqueue import live_workers
from streamq._errors import QueueInUse
from streamq.cli._output import CliError, UsageError, emit_json

if TYPE_CHECKING:
    from streamq._app import App


def confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{question}: pass --yes to confirm (no terminal to ask on)")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


async def delete(app: App, args: argparse.Namespace) -> int:
    """Deletes the queue entirely; exit 1 (nothing done) while live workers serve it, unless
    ``--force``."""
    workers = await live_workers((await app.connect()).broker, args.queue)
    question = f"delete queue {args.queue} and every job, log and dead letter in it?"
    if workers:
        question += f" ({workers} live workers serve it: it is paused first)"
    if workers and not args.force:
        raise CliError(
            f"{workers} live worker(s) serve queue {args.queue!r}: stop them, or pass --force"
        )
    if not confirm(question, args.yes):
        print("nothing done")
        return 1
    try:
        deletion = await app.delete_queue(args.queue, force=args.force)
    except QueueInUse as exc:  # a worker started meanwhile
        raise CliError(str(exc)) from None
    if args.json:
        emit_json({"queue": args.queue, "action": "delete", "jobs": deletion.jobs})
    else:
        print(f"deleted queue {args.queue} ({deletion.jobs} jobs)")
    return 0


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
