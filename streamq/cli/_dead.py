"""``streamq dead replay|purge``: by job id or dead-letter entry id, or ``--all``, in chunks
so a progress bar can follow thousands of letters (the core works in batches of 500 too)."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from streamq import _keys
from streamq._connection import broker_errors
from streamq.cli._output import UsageError, emit_json, progress

if TYPE_CHECKING:
    from streamq._app import App

CHUNK = 500
_ENTRY_ID = re.compile(r"^\d+-\d+$")


async def _all_entries(app: App, queue: str) -> list[str]:
    """Every dead-letter entry id, oldest first (the stream is capped, so this is bounded)."""
    out: list[str] = []
    start = "-"
    with broker_errors(f"reading dead letters of {queue}"):
        while True:
            page = await app.redis.xrange(_keys.dead(queue), min=start, count=5000)
            out.extend(eid.decode() for eid, _ in page)
            if len(page) < 5000:
                return out
            start = "(" + page[-1][0].decode()


async def resolve(app: App, queue: str, ids: list[str]) -> tuple[list[str], list[str]]:
    """Maps each given id (a dead-letter entry id or a job id) to entry ids; returns
    (entry ids, ids that match no dead letter)."""
    by_job: dict[str, list[str]] = {}
    entries: set[str] = set()
    start = "-"
    with broker_errors(f"reading dead letters of {queue}"):
        while True:
            page = await app.redis.xrange(_keys.dead(queue), min=start, count=5000)
            for eid, f in page:
                entry = eid.decode()
                entries.add(entry)
                by_job.setdefault(f.get(b"id", b"").decode(), []).append(entry)
            if len(page) < 5000:
                break
            start = "(" + page[-1][0].decode()
    found: list[str] = []
    missing: list[str] = []
    for given in ids:
        if _ENTRY_ID.match(given) and given in entries:
            found.append(given)
        elif given in by_job:
            found.extend(by_job[given])
        else:
            missing.append(given)
    return list(dict.fromkeys(found)), missing


def check_args(args: argparse.Namespace) -> None:
    """Raises UsageError unless exactly one of ids and --all is given, saying what to pass."""
    if args.all and args.ids:
        raise UsageError(
            f"pass dead-letter ids or --all, not both (e.g. `streamq dead {args.action} "
            f"{args.queue} --all`)"
        )
    if not args.all and not args.ids:
        raise UsageError(
            f"say which dead letters to {args.action}: job ids or entry ids (listed by "
            f"`streamq inspect dead {args.queue}`), or --all for every one"
        )


async def command(app: App, args: argparse.Namespace) -> int:
    """Replays or purges; exit 1 if some ids matched no dead letter (the rest are done)."""
    check_args(args)
    if args.all and args.ids:
        raise UsageError(f"pass dead-letter ids or --all, not both (`streamq dead {args.action} "
                         f"{args.queue} --all`)")  # fmt: skip
    if not args.all and not args.ids:
        raise UsageError(
            f"say which dead letters to {args.action}: job ids or entry ids (see `streamq inspect "
            f"dead {args.queue}`), or --all for every one"
        )
    missing: list[str] = []
    if args.all:
        entries = await _all_entries(app, args.queue)
    else:
        entries, missing = await resolve(app, args.queue, args.ids)
    op = app.replay_dead if args.action == "replay" else app.purge_dead
    done = 0
    verb = "replaying" if args.action == "replay" else "purging"
    with progress(f"{verb} dead letters", len(entries), enabled=not args.json) as bar:
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]
            done += await op(args.queue, chunk)
            bar.advance(bar.task_ids[0], len(chunk))
    result = {
        "queue": args.queue,
        "action": args.action,
        "matched": len(entries),
        "done": done,
        "missing": missing,
    }
    if args.json:
        emit_json(result)
    else:
        past = "replayed" if args.action == "replay" else "purged"
        print(f"{past} {done} of {len(entries)} dead letters in {args.queue}")
        if missing:
            print(f"no dead letter for: {', '.join(missing)}")
    return 1 if missing else 0
