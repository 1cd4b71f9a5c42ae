"""``streamq inspect ...``: reads through the read model (``streamq._inspect``, which the
server's queue views read too) and shows tables (or ``--json``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from streamq._inspect import ReadModel
from streamq._types import LANES, LaneStats
from streamq.cli._joblogs import print_log
from streamq.cli._output import CliError, age, cell, emit_json, fields, table, timestamp
from streamq.cli._read import check_lane

if TYPE_CHECKING:
    from streamq._app import App


def _lane_cell(lanes: dict[str, LaneStats], lane: str) -> str:
    s = lanes.get(lane)
    return f"{s.depth}/{s.pending}" if s is not None and (s.depth or s.pending) else "."


def _emit_json(args: argparse.Namespace, data: Any) -> bool:
    """Prints ``data`` as JSON if ``--json`` was given; True if it was."""
    if args.json:
        emit_json(data)
    return bool(args.json)


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


async def queue(app: App, args: argparse.Namespace) -> int:
    q = await ReadModel(app.broker).summary(args.queue)
    if _emit_json(args, q):
        return 0
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
    return 0


async def lanes(app: App, args: argparse.Namespace) -> int:
    data = await ReadModel(app.broker).lanes(args.queue)
    if _emit_json(args, data):
        return 0
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
    return 0


async def groups(app: App, args: argparse.Namespace) -> int:
    data = await ReadModel(app.broker).groups(args.queue)
    if _emit_json(args, data):
        return 0
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
    return 0


async def pending(app: App, args: argparse.Namespace) -> int:
    check_lane(args.lane)
    data = await ReadModel(app.broker).pending(args.queue, args.lane, args.limit)
    if _emit_json(args, data):
        return 0
    if not data:
        print(f"no pending entries in {args.queue}")
        return 0
    table(
        f"pending entries of {args.queue}",
        ["LANE", "ENTRY", "JOB", "NAME", "CONSUMER", "IDLE", "DELIVERIES"],
        [
            [r.lane, r.entry_id, r.job, r.name, r.consumer, age(r.idle_s), r.deliveries]
            for r in data
        ],
    )
    return 0


async def job(app: App, args: argparse.Namespace) -> int:
    data = await ReadModel(app.broker).job_history(args.queue, args.id)
    if data is None:
        raise CliError(f"no job {args.id!r} in queue {args.queue!r} (never enqueued, or expired)")
    if _emit_json(args, data):
        return 0
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
        log = await app.job_logs(args.queue, args.id)
        if log is not None and log.lines:
            print_log(log)
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
    return 0


async def dead(app: App, args: argparse.Namespace) -> int:
    data = await ReadModel(app.broker).dead(args.queue, args.limit)
    if _emit_json(args, data):
        return 0
    if not data.letters:
        print(f"no dead letters in {args.queue}")
        return 0
    table(
        f"dead letters of {args.queue} ({len(data.letters)} of {data.total})",
        ["ENTRY", "JOB", "NAME", "REASON", "ATTEMPT", "AT", "ERROR"],
        [
            [d.id, d.job, d.name, d.reason, d.attempt, timestamp(d.at), d.error[:120]]
            for d in data.letters
        ],
    )
    return 0
