"""``streamq priority QUEUE PRIORITY ID...``: moves waiting jobs to another lane; exit 1 if
some id was refused (active or finished) or missing (the others are moved)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from streamq._errors import InvalidJob, JobNotFound, JobStateConflict
from streamq._types import lane_of
from streamq.cli._output import UsageError, emit_json, print_refusals

if TYPE_CHECKING:
    from streamq._app import App


def priority(text: str) -> str | int:
    """A lane name or 1-10, as enqueue takes it."""
    value: str | int = int(text) if text.isdigit() else text
    try:
        lane_of(value)
    except InvalidJob as exc:
        raise UsageError(str(exc)) from None
    return value


async def command(app: App, args: argparse.Namespace) -> int:
    moved: list[str] = []
    unchanged: list[str] = []
    refused: dict[str, str] = {}
    missing: list[str] = []
    for job_id in args.ids:
        try:
            changed = await app.set_priority(args.queue, job_id, args.priority)
        except JobNotFound:
            missing.append(job_id)
        except JobStateConflict as exc:
            refused[job_id] = exc.state
        else:
            (moved if changed else unchanged).append(job_id)
    lane = lane_of(args.priority)
    if args.json:
        emit_json(
            {
                "lane": lane,
                "moved": moved,
                "unchanged": unchanged,
                "refused": refused,
                "missing": missing,
            }
        )
        return 1 if refused or missing else 0
    print(f"moved {len(moved)} of {len(args.ids)} jobs in {args.queue} to lane {lane}")
    if unchanged:
        print(f"  already there: {', '.join(unchanged)}")
    return print_refusals(refused, missing, "moved")
