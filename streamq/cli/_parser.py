"""The ``streamq`` argument parser: every command, its options, help and example, wired to the
module that runs it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any, NoReturn

from streamq._types import LANES
from streamq.cli import (
    _bench,
    _completion,
    _dead,
    _enqueue,
    _inspect,
    _joblogs,
    _jobs,
    _pause,
    _priority,
    _queue,
    _redis,
    _run,
    _serve,
    _tail,
    _worker,
)
from streamq.cli._output import UsageError
from streamq.cli._session import Command, on_app

EXAMPLES = {
    "worker": "streamq worker streamq.demo:app --concurrency 50",
    "enqueue": "streamq enqueue demo send-email --payload '\"a@example.com\"' --app streamq.demo:app",
    "redis": "streamq redis",
    "run": "streamq run --processes 2",
    "serve": "streamq serve --host 127.0.0.1 --port 8000 --app streamq.demo:app",
    "bench": "streamq bench --jobs 20000",
    "inspect": "streamq inspect queues",
    "inspect queues": "streamq inspect queues --json",
    "inspect queue": "streamq inspect queue wallet-operations",
    "inspect job": "streamq inspect job wallet-operations sync:abc123",
    "inspect logs": "streamq inspect logs wallet-operations sync:abc123",
    "inspect lanes": "streamq inspect lanes wallet-operations",
    "inspect groups": "streamq inspect groups wallet-operations",
    "inspect pending": "streamq inspect pending wallet-operations --lane high",
    "inspect dead": "streamq inspect dead wallet-operations --limit 20",
    "inspect jobs": "streamq inspect jobs wallet-operations --state dead --name sync-wallet",
    "tail": "streamq tail wallet-operations --type completed,dead",
    "dead": "streamq dead replay wallet-operations --all",
    "dead replay": "streamq dead replay wallet-operations JOB_ID",
    "dead purge": "streamq dead purge wallet-operations --all",
    "pause": "streamq pause wallet-operations",
    "resume": "streamq resume wallet-operations",
    "completion": 'eval "$(streamq completion bash)"',
    "cancel": "streamq cancel wallet-operations JOB_ID",
    "retry": "streamq retry wallet-operations JOB_ID JOB_ID",
    "promote": "streamq promote wallet-operations JOB_ID",
    "priority": "streamq priority wallet-operations high JOB_ID JOB_ID",
    "queue": "streamq queue drain wallet-operations --yes",
    "queue drain": "streamq queue drain wallet-operations --yes",
    "queue clean": "streamq queue clean wallet-operations --older-than 86400 --state dead",
    "queue delete": "streamq queue delete wallet-operations --yes",
}


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (and exit code 2) instead of usage plus message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="streamq",
        description="A job queue on Redis Streams.",
        epilog="Redis: --redis-url, else $STREAMQ_REDIS_URL, else the embedded server of "
        "./.streamq/ (started only by run, worker, serve and redis). Exit codes: 0 ok, "
        "1 failed, 2 usage. example: streamq inspect queues",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("STREAMQ_LOG_LEVEL"),
        help="DEBUG, INFO, WARNING, ERROR ($STREAMQ_LOG_LEVEL; default INFO for servers and "
        "workers, WARNING for the rest)",
    )
    parser.add_argument(
        "--redis-url", dest="global_redis_url", default=None, help="as on every command"
    )
    common = Parser(add_help=False)
    common.add_argument(
        "--redis-url",
        default=None,
        help="Redis URL (default: $STREAMQ_REDIS_URL, else this directory's embedded server)",
    )
    as_json = Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable output")
    on_queue = Parser(add_help=False)
    on_queue.add_argument("queue", help="the queue's name")

    def add(
        sub: Any, name: str, help: str, fn: Callable[[argparse.Namespace], int], *parents: Any
    ) -> argparse.ArgumentParser:
        path = f"{sub.prog_path} {name}".strip()
        # Groups (inspect, dead) take no options: a subparser's defaults would overwrite them.
        p: argparse.ArgumentParser = sub.add_parser(
            name,
            help=help,
            description=help,
            parents=[common, *parents] if fn is not _usage else [],
            epilog=f"example: {EXAMPLES[path]}" if path in EXAMPLES else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(fn=fn)
        return p

    def group(
        p: argparse.ArgumentParser, path: str, dest: str
    ) -> argparse._SubParsersAction[Parser]:
        s = p.add_subparsers(
            dest=dest, required=True, metavar="{" + dest + "}", parser_class=Parser
        )
        s.prog_path = path  # type: ignore[attr-defined]
        return s

    sub = group(parser, "", "command")

    p = add(sub, "worker", "run the handlers of an app", _worker.command)
    p.add_argument("app", help="module[:attribute] of the App, e.g. myproject.tasks:app")
    p.add_argument("--queues", help="comma-separated queues (default: all of the app's)")
    p.add_argument(
        "--concurrency",
        type=_checked(_worker.parse_concurrency),
        default=_worker.Concurrency(),
        metavar="N|QUEUE=N,...",
        help="jobs at once: N for the queues without a limit (50), QUEUE=N for one queue "
        "(over the app's limits)",
    )
    p.add_argument("--grace", type=float, default=30.0, help="seconds to finish jobs on SIGTERM")
    p.add_argument(
        "--unknown-grace",
        type=float,
        default=60.0,
        help="seconds a task may have no live worker before its jobs are dead-lettered",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="worker processes under a supervisor that restarts them and forwards SIGTERM "
        "(default 1: this process is the worker); process i serves metrics on port "
        "--metrics-port + i",
    )
    p.add_argument(
        "--isolation-processes",
        type=int,
        default=None,
        help='subprocesses for isolation="process" handlers (default: the CPU count)',
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=9108,
        action=_Given,
        help="Prometheus metrics port (0: off; the default 9108 falls back to a free port "
        "when taken, a port given here must be free)",
    )
    p.add_argument("--metrics-host", default="127.0.0.1")

    p = add(sub, "enqueue", "enqueue one job (prints it as JSON)", _enqueue.command, on_queue)
    p.add_argument("name")
    p.add_argument("--payload", help="JSON payload, @FILE for a file, - for stdin")
    p.add_argument("--id", help="job id (deduplicates)")
    p.add_argument(
        "--priority",
        type=_checked(_enqueue.parse_priority),
        help="critical|high|normal|low|bulk or 1-10",
    )
    p.add_argument(
        "--delay",
        type=_checked(_enqueue.parse_delay),
        help="seconds before it may run (0 to a year and a day)",
    )
    p.add_argument("--app", help="module[:attribute] of the App, to validate the payload")
    p.add_argument("--json", action="store_true", help="(the output is always JSON)")

    add(sub, "redis", "run the embedded Redis (Valkey) in the foreground", _redis.command)

    p = add(
        sub,
        "run",
        "embedded Redis + HTTP server + workers + a demo workload (what `make run` does)",
        _run.command,
    )
    p.add_argument(
        "--app",
        default=None,
        help="module[:attribute] ($STREAMQ_APP, else [tool.streamq] app in ./pyproject.toml, "
        "else streamq.demo:app)",
    )
    p.add_argument(
        "--processes",
        "--workers",
        dest="processes",
        type=int,
        default=1,
        help="worker processes, supervised as by `streamq worker --processes` (default 1: the "
        "demo needs no more, and Redis, the server and the producer share the cores)",
    )
    p.add_argument(
        "--concurrency",
        type=_checked(_worker.parse_concurrency),
        default=_worker.Concurrency(),
        metavar="N|QUEUE=N,...",
        help="jobs at once per worker: N, and QUEUE=N per queue (over the app's limits)",
    )
    p.add_argument("--host", default=os.environ.get("STREAMQ_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("STREAMQ_PORT", "8000")))
    p.add_argument("--no-demo", action="store_true", help="no demo workload")
    p.add_argument("--no-server", action="store_true", help="no HTTP server")
    p.add_argument("--status-every", type=float, default=5.0, help="seconds between status lines")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")

    p = add(sub, "serve", "run the HTTP server (REST API, SSE, /metrics, docs)", _serve.command)
    p.add_argument("--host", default=None, help="bind address ($STREAMQ_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port ($STREAMQ_PORT, 8000)")
    p.add_argument(
        "--app",
        default=None,
        help="module[:attribute] ($STREAMQ_APP, else [tool.streamq] app in ./pyproject.toml, "
        "else streamq.demo:app)",
    )

    p = add(sub, "bench", "benchmarks: throughput, latency, Redis cost per job", _bench.command)
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--quick", action="store_true", help="a short run (smaller numbers)")

    def add_for_queue(
        sub: Any,
        name: str,
        help: str,
        fn: Command,
        check_args: Callable[[argparse.Namespace], None] | None = None,
    ) -> argparse.ArgumentParser:
        """A command on one queue (its name the first argument), run on the app, with --json."""
        return add(sub, name, help, on_app(fn, check_args=check_args), as_json, on_queue)

    p = add(sub, "inspect", "look into queues, jobs, lanes, groups, pending entries", _usage)
    inspect = group(p, "inspect", "what")
    p = add(
        inspect,
        "queues",
        "every queue: lanes, delayed, dead, workers, rates",
        on_app(_inspect.queues),
        as_json,
    )
    p.add_argument("--names", action="store_true", help="only the names, one a line")
    add_for_queue(inspect, "queue", "one queue in detail", _inspect.queue)
    p = add_for_queue(inspect, "job", "a job's record, attempts and event history", _inspect.job)
    p.add_argument("id", help="job id")
    p = add(
        inspect,
        "logs",
        "what a job's handler wrote with ctx.log, oldest line first",
        on_app(_joblogs.logs),
        as_json,
    )
    p.add_argument("queue", help="the queue's name")
    p.add_argument("id", help="job id")
    for name, help, view in (
        ("lanes", "a queue's lanes: length, waiting, pending, lag, oldest entry", _inspect.lanes),
        (
            "groups",
            "consumer groups and consumers (idle times, lag), worker heartbeats",
            _inspect.groups,
        ),
    ):
        add_for_queue(inspect, name, help, view)
    p = add_for_queue(
        inspect,
        "pending",
        "delivered, unsettled entries: owner, idle, deliveries",
        _inspect.pending,
    )
    p.add_argument("--lane", help="only this lane")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    p = add_for_queue(inspect, "dead", "dead letters: job, reason, error", _inspect.dead)
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")

    p = add_for_queue(
        inspect, "jobs", "a queue's jobs, newest first, by state, name, lane", _jobs.command
    )
    p.add_argument("--state", help="only jobs in this state (queued, active, dead, ...)")
    p.add_argument("--name", help="only jobs of this name")
    p.add_argument("--lane", help="only jobs of this priority lane")
    p.add_argument("--tag", help="only jobs with this tag (e.g. wallet:9Wz...)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (1-500, default 50)")
    p.add_argument("--cursor", help="the next page (as the previous page printed)")

    p = add_for_queue(sub, "tail", "follow a queue's events live", _tail.command)
    p.add_argument("--job", help="only this job's events")
    p.add_argument("--type", action="append", help="only these event types (comma list)")
    p.add_argument(
        "--since",
        default="$",
        type=_checked(_tail.parse_since),
        help="'start', an event id, or '$' (new only)",
    )
    p.add_argument("--count", type=int, default=0, help="stop after this many events")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds")

    p = add(sub, "dead", "replay or purge dead letters", _usage)
    dead = group(p, "dead", "action")
    for action, help in (
        ("replay", "put dead letters back as fresh jobs"),
        ("purge", "delete dead letters and their job records"),
    ):
        p = add_for_queue(dead, action, help, _dead.command, _dead.check_args)
        p.add_argument("ids", nargs="*", metavar="ID", help="job ids or dead-letter entry ids")
        p.add_argument(
            "--all", action="store_true", help="every dead letter there when the command starts"
        )

    for name, help in (("pause", "stop workers taking new jobs"), ("resume", "undo pause")):
        add_for_queue(sub, name, f"{help} from a queue", _pause.command)

    for name, help in (
        ("cancel", "cancel jobs: waiting ones never run, running ones are stopped"),
        ("retry", "run dead, cancelled or completed jobs again with fresh attempts"),
        ("promote", "run scheduled (delayed) or retrying jobs now"),
    ):
        p = add_for_queue(sub, name, help, _jobs.act)
        p.add_argument("ids", nargs="+", metavar="ID", help="job ids")

    p = add(
        sub,
        "priority",
        "move waiting (queued, scheduled, retrying) jobs to another lane",
        on_app(_priority.command),
        as_json,
    )
    p.add_argument("queue", help="the queue's name")
    p.add_argument(
        "priority",
        type=_checked(_priority.priority),
        help=f"the new lane ({', '.join(LANES)}) or 1-10",
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="job ids")

    p = add(sub, "queue", "drain, clean or delete a queue", _usage)
    queue = group(p, "queue", "action")
    p = add_for_queue(
        queue, "drain", "remove every waiting job (active ones run on)", _queue.command
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = add_for_queue(queue, "clean", "remove finished jobs older than a given age", _queue.command)
    p.add_argument(
        "--older-than", type=float, required=True, metavar="SECONDS", help="finished before"
    )
    p.add_argument("--state", choices=["completed", "dead", "cancelled"], help="only this state")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    p = add(
        queue,
        "delete",
        "delete a queue entirely: its jobs, logs, dead letters, schedules, registry entry",
        on_app(_queue.delete),
        as_json,
    )
    p.add_argument("queue", help="the queue's name")
    p.add_argument(
        "--force", action="store_true", help="even while live workers serve it (pauses it first)"
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    p = add(sub, "completion", "print a shell completion script", _completion.command)
    p.add_argument("shell", choices=["bash", "zsh"])
    return parser


class _Given(argparse.Action):
    """Stores the value and notes that it was given (``<dest>_given``), so a default can
    behave differently from the same value asked for."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


def _checked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` from a parser raising UsageError: its message, on one line."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def _usage(args: argparse.Namespace) -> int:  # pragma: no cover - subcommands are required
    raise UsageError("name a subcommand")
