"""``streamq inspect jobs QUEUE``: a queue's jobs from its job index, newest first, filtered by
state, name, lane, tag; a table that stays readable at 80 columns, or ``--json``."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from rich.table import Table

from streamq._types import Job
from streamq.cli._output import age, console, emit_json, print_refusals, to_builtins

if TYPE_CHECKING:
    from streamq._app import App


def _changed(job: Job) -> float | None:
    """When the job last moved: finished, started, else created (epoch seconds)."""
    return job.finished_at or job.started_at or job.created_at


def jobs_table(jobs: list[Job], now: float) -> Table:
    """ID and NAME take what room is left (folding long ids whole, never into fragments of
    the short columns); STATE, ATT, PRIO and AGE never wrap."""
    t = Table(header_style="bold", show_edge=False, pad_edge=False, box=None)
    t.add_column("ID", overflow="fold", ratio=3, min_width=12)
    t.add_column("NAME", overflow="ellipsis", ratio=2, min_width=8, no_wrap=True)
    t.add_column("STATE", no_wrap=True)
    t.add_column("ATT", justify="right", no_wrap=True)
    t.add_column("PRIO", no_wrap=True)
    t.add_column("AGE", justify="right", no_wrap=True)
    for job in jobs:
        changed = _changed(job)
        t.add_row(
            job.id,
            job.name,
            job.state,
            f"{job.attempt}/{job.max_attempts}",
            job.priority,
            age(max(now - changed, 0.0)) if changed else "-",
        )
    return t


async def command(app: App, args: argparse.Namespace) -> int:
    page = await app.list_jobs(
        args.queue,
        state=args.state,
        name=args.name,
        lane=args.lane,
        tag=args.tag,
        limit=args.limit,
        cursor=args.cursor,
    )
    if args.json:
        emit_json({"jobs": to_builtins(page.jobs), "next": page.next})
        return 0
    if not page.jobs:
        print("no jobs match" + (f" (more may follow: --cursor {page.next})" if page.next else ""))
        return 0
    console().print(jobs_table(page.jobs, time.time()))
    if page.next:
        print(f"more: --cursor {page.next}")
    return 0


async def act(app: App, args: argparse.Namespace) -> int:
    """``streamq cancel|retry|promote QUEUE ID...``: exit 1 if some id was refused or missing
    (the others are done)."""
    action = args.command
    done: list[str] = []
    refused: dict[str, str] = {}
    missing: list[str] = []
    if action == "cancel":
        for job_id in args.ids:
            job = await app.job(args.queue, job_id)
            if job is None:
                missing.append(job_id)
            elif job.finished:
                refused[job_id] = job.state
            elif await app.cancel(args.queue, job_id):
                done.append(job_id)
    else:
        outcome = await app.operate(args.queue, action, list(args.ids))
        refused, missing = outcome.refused, outcome.missing
        done = [i for i in args.ids if i not in refused and i not in missing]
    if args.json:
        emit_json({"action": action, "done": done, "refused": refused, "missing": missing})
        return 1 if refused or missing else 0
    past = {"cancel": "cancelled", "retry": "retried", "promote": "promoted"}[action]
    print(f"{past} {len(done)} of {len(args.ids)} jobs in {args.queue}")
    return print_refusals(refused, missing, past)
