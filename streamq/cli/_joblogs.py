"""``streamq inspect logs QUEUE ID``: what a job's handler wrote with ``ctx.log`` (also shown
by ``streamq inspect job``)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from streamq._inspect import JobHistory
from streamq._joblog import JobLog
from streamq.cli._output import CliError, emit_json, table, timestamp

if TYPE_CHECKING:
    from streamq._app import App


class JobWithLog(JobHistory, frozen=True, kw_only=True):
    """``inspect job``'s view: the record, its history, and its log (None: no record)."""

    log: JobLog | None = None


def print_log(log: JobLog) -> None:
    """The log as a table (time, attempt, message and its fields), oldest line first."""
    title = f"log ({len(log.lines)} lines"
    title += f", {log.dropped} older dropped)" if log.dropped else ")"
    table(
        title,
        ["AT", "ATTEMPT", "MESSAGE"],
        [
            [
                timestamp(line.at),
                line.attempt,
                " ".join(
                    [
                        line.message + (" [cut]" if line.truncated else ""),
                        *(
                            f"{k}={json.dumps(v, ensure_ascii=False)}"
                            for k, v in line.fields.items()
                        ),
                    ]
                ),
            ]
            for line in log.lines
        ],
    )


async def logs(app: App, args: argparse.Namespace) -> int:
    log = await app.job_logs(args.queue, args.id)
    if log is None:
        raise CliError(f"no job {args.id!r} in queue {args.queue!r} (never enqueued, or expired)")
    if args.json:
        emit_json(log)
    elif not log.lines:
        print(f"job {args.id} has written no log lines")
    else:
        print_log(log)
    return 0
