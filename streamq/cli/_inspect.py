"""``streamq inspect ...``: reads through the read model (``streamq._inspect``, which the
server's queue views read too) and shows tables (or ``--json``)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from streamq._inspect import (
    DeadPage,
    LaneInfo,
    PendingEntry,
    QueueGroups,
    QueueSummary,
    ReadModel,
)
from streamq._joblog import read as read_log
from streamq._types import LANES, LaneStats
from streamq.cli._joblogs import JobWithLog, print_log
from streamq.cli._output import CliError, age, cell, emit_json, fields, table, timestamp
from streamq.cli._read import check_lane

if TYPE_CHECKING:
    from streamq._app import App
    from streamq.cli._session import Command

T = TypeVar("T")


def _lane_cell(lanes: dict[str, LaneStats], lane: str) -> str:
    s = lanes.get(lane)
    return f"{s.depth}/{s.pending}" if s is not None and (s.depth or s.pending) else "."


def _emit_json(args: argparse.Namespace, data: Any) -> bool:
    """Prints ``data`` as JSON if ``--json`` was given; True if it was."""
    if args.json:
        emit_json(data)
    return bool(args.json)


def _view(
    read: Callable[[ReadModel, argparse.Namespace], Awaitable[T]],
) -> Callable[[Callable[[argparse.Namespace, T], None]], Command]:
    """Makes a command of a function that shows what ``read`` returns: the command reads
    through the read model and prints that as JSON with ``--json``, else shows it."""

    def command(show: Callable[[argparse.Namespace, T], None]) -> Command:
        async def run(app: App, args: argparse.Namespace) -> int:
            data = await read(ReadModel(app.broker), args)
            if not _emit_json(args, data):
                show(args, data)
            return 0

        return run

    return command


async def queues(app: App, args: argparse.Namespace) -> int:
    if args.names:  # for scripts and shell completion: no stats read
        names = await app.queue_names()
        if not _emit_json(args, names):
            print("\n".join(names))
        return 0
    data = await ReadModel(app.broker).summaries()
    if _emit_json(args, data):
        return 0
    if not data:
        print("no queues yet (a queue appears once a job is enqueued or a worker serves it)")
        return 0
    rows = [
        [
            q.queue,
            "paused" if q.paused else "running",
            *(_lane_cell(q.lanes, lane) for lane in LANES),
            q.delayed,
            q.dead,
            q.workers,
            q.rates["completed"],
            q.rates["dead"],
            age(q.oldest_waiting_age) if q.waiting else "-",
        ]
        for q in data
    ]
    table(
        None,
        [
            "QUEUE",
            "STATE",
            *(lane[:4].upper() for lane in LANES),
            *("DELAYED", "DEAD", "WORKERS", "DONE/S", "DEAD/S", "OLDEST"),
        ],
        rows,
    )
    print("lanes: waiting/pending (delivered, not yet settled); rates over the last minute")
    return 0


@_view(lambda model, args: model.summary(args.queue))
def queue(args: argparse.Namespace, q: QueueSummary) -> None:
    fields(
        f"queue {q.queue}",
        [
            ("state", "paused" if q.paused else "running"),
            ("waiting", q.waiting),
            ("active (pending)", q.active),
            ("delayed", q.delayed),
            ("dead letters", q.dead),
            ("workers alive", q.workers),
            ("oldest waiting", age(q.oldest_waiting_age) if q.waiting else "-"),
            ("rates /s (1 min)", ", ".join(f"{k} {cell(v)}" for k, v in q.rates.items())),
            ("totals", ", ".join(f"{k} {v}" for k, v in sorted(q.totals.items())) or "-"),
        ],
    )
    table(
        None,
        ["LANE", "WAITING", "PENDING"],
        [[lane, s.depth, s.pending] for lane, s in q.lanes.items()],
    )


@_view(lambda model, args: model.lanes(args.queue))
def lanes(args: argparse.Namespace, data: list[LaneInfo]) -> None:
    table(
        f"lanes of {args.queue}",
        ["LANE", "LENGTH", "WAITING", "PENDING", "LAG", "CONSUMERS", "OLDEST", "LAST DELIVERED"],
        [
            [
                r.lane,
                r.length,
                r.waiting,
                r.pending,
                r.lag,
                r.consumers,
                age(r.oldest_entry_age),
                r.last_delivered_id,
            ]
            for r in data
        ],
    )


@_view(lambda model, args: model.groups(args.queue))
def groups(args: argparse.Namespace, data: QueueGroups) -> None:
    rows: list[list[Any]] = []
    for g in data.groups:
        rows.append([g.lane, g.group, "", g.pending, "", g.lag, g.last_delivered_id])
        rows.extend(["", "", c.name, c.pending, age(c.idle_s), "", ""] for c in g.consumers)
    table(
        f"consumer groups of {args.queue}",
        ["LANE", "GROUP", "CONSUMER", "PENDING", "IDLE", "LAG", "LAST DELIVERED"],
        rows,
    )
    table(
        "workers (heartbeats)",
        ["WORKER", "LAST SEEN", "ALIVE"],
        [[w.name, age(w.last_seen_s), w.alive] for w in data.workers],
    )


async def _read_pending(model: ReadModel, args: argparse.Namespace) -> list[PendingEntry]:
    check_lane(args.lane)
    return await model.pending(args.queue, args.lane, args.limit)


@_view(_read_pending)
def pending(args: argparse.Namespace, data: list[PendingEntry]) -> None:
    if not data:
        print(f"no pending entries in {args.queue}")
        return
    table(
        f"pending entries of {args.queue}",
        ["LANE", "ENTRY", "JOB", "NAME", "CONSUMER", "IDLE", "DELIVERIES"],
        [
            [r.lane, r.entry_id, r.job, r.name, r.consumer, age(r.idle_s), r.deliveries]
            for r in data
        ],
    )


async def _read_job(model: ReadModel, args: argparse.Namespace) -> JobWithLog:
    data = await model.job_history(args.queue, args.id)
    if data is None:
        raise CliError(f"no job {args.id!r} in queue {args.queue!r} (never enqueued, or expired)")
    log = await read_log(model.broker, args.queue, args.id)
    return JobWithLog(job=data.job, history=data.history, log=log)


@_view(_read_job)
def job(args: argparse.Namespace, data: JobWithLog) -> None:
    j = data.job
    if j is None:
        print(f"job {args.id}: record expired; history from the events stream:")
    else:
        pairs: list[tuple[str, Any]] = [
            ("state", j.state),
            ("name", j.name),
            ("lane", j.priority),
            ("attempt", f"{j.attempt} of {j.max_attempts}"),
            ("deliveries", j.deliveries),
            ("progress", f"{cell(j.progress)}% {j.progress_message}".rstrip()),
            ("created", timestamp(j.created_at)),
            ("run at", timestamp(j.run_at)),
            ("started", timestamp(j.started_at)),
            ("finished", timestamp(j.finished_at)),
            ("payload", j.payload),
        ]
        if j.result is not None:
            pairs.append(("result", j.result))
        if j.error:
            pairs.append(("error", j.error))
        if j.reason:
            pairs.append(("reason", j.reason))
        fields(f"job {args.id} ({args.queue})", pairs)
        if data.log is not None and data.log.lines:
            print_log(data.log)
    table(
        "history",
        ["AT", "EVENT", "ATTEMPT", "DETAIL"],
        [
            [
                timestamp(e.at),
                e.type,
                e.attempt,
                " ".join(
                    str(x)
                    for x in (
                        f"{cell(e.progress)}%" if e.progress is not None else None,
                        e.message,
                        e.error,
                    )
                    if x
                ),
            ]
            for e in data.history
            if e.type != "log"  # the log above shows them (with their fields)
        ],
    )


@_view(lambda model, args: model.dead(args.queue, args.limit))
def dead(args: argparse.Namespace, data: DeadPage) -> None:
    if not data.letters:
        print(f"no dead letters in {args.queue}")
        return
    table(
        f"dead letters of {args.queue} ({len(data.letters)} of {data.total})",
        ["ENTRY", "JOB", "NAME", "REASON", "ATTEMPT", "AT", "ERROR"],
        [
            [d.id, d.job, d.name, d.reason, d.attempt, timestamp(d.at), d.error[:120]]
            for d in data.letters
        ],
    )
