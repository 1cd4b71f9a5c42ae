"""The ``streamq`` command line.

Exit codes: 0 ok, 1 the operation failed, 2 usage. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from streamq._app import App
from streamq._errors import StreamqError

EXAMPLES = {
    "worker": "streamq worker streamq.demo:app --concurrency 50",
    "enqueue": "streamq enqueue demo send-email --payload '\"a@example.com\"' --app streamq.demo:app",
    "redis": "streamq redis",
    "run": "streamq run",
    "bench": "streamq bench --jobs 20000",
}


class CliError(Exception):
    """A failure reported as one line and exit code 1."""


def load_app(spec: str) -> App:
    """``module[:attribute]`` -> the App (attribute defaults to ``app``)."""
    module_name, _, attr = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"cannot import {module_name!r}: {exc}") from exc
    app = getattr(module, attr or "app", None)
    if not isinstance(app, App):
        raise CliError(f"{spec!r} is not a streamq App")
    return app


def _cmd_worker(args: argparse.Namespace) -> int:
    from streamq._worker import run_worker

    app = load_app(args.app)
    if args.redis_url:
        app._url = args.redis_url
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.metrics_host)
    queues = args.queues.split(",") if args.queues else None
    asyncio.run(run_worker(app, queues=queues, concurrency=args.concurrency, grace=args.grace))
    return 0


def _cmd_enqueue(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload) if args.payload is not None else None
    except json.JSONDecodeError as exc:
        raise CliError(f"--payload is not JSON: {exc}") from exc
    app = load_app(args.app) if args.app else App("cli", redis_url=args.redis_url)
    if not args.app:
        # Without the app's code there is no type to check against: accept any payload.
        def untyped(ctx: Any, payload: Any) -> None: ...

        app.task(args.name, queue=args.queue)(untyped)
    elif args.redis_url:
        app._url = args.redis_url

    async def go() -> dict[str, Any]:
        async with app:
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

    print(json.dumps(asyncio.run(go())))
    return 0


def _priority(value: str | None) -> str | int | None:
    return int(value) if value and value.isdigit() else value


def _cmd_redis(args: argparse.Namespace) -> int:
    from streamq._embedded import Embedded

    embedded = Embedded()
    url = embedded.attach_or_start()
    if not embedded.owned:
        print(f"an embedded server already runs for this directory: {url}")
        return 0
    print(f"embedded valkey at {url} (data in {embedded.directory}/, AOF on); Ctrl-C stops it")
    try:
        assert embedded.proc is not None
        embedded.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        embedded.stop()
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from streamq._run import run

    return run(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from streamq._bench_cli import bench

    return bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamq",
        description="A job queue on Redis Streams.",
        epilog="Redis: --redis-url, else $STREAMQ_REDIS_URL, else the embedded server of ./.streamq/",
    )
    parser.add_argument("--log-level", default=os.environ.get("STREAMQ_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, help: str, fn: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=f"example: {EXAMPLES[name]}" if name in EXAMPLES else None,
        )
        p.add_argument(
            "--redis-url", default=None, help="Redis URL (default: $STREAMQ_REDIS_URL or embedded)"
        )
        p.set_defaults(fn=fn)
        return p

    p = command("worker", "run the handlers of an app", _cmd_worker)
    p.add_argument("app", help="module[:attribute] of the App, e.g. myproject.tasks:app")
    p.add_argument("--queues", help="comma-separated queues (default: all of the app's)")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--grace", type=float, default=30.0, help="seconds to finish jobs on SIGTERM")
    p.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics here")
    p.add_argument("--metrics-host", default="127.0.0.1")

    p = command("enqueue", "enqueue one job", _cmd_enqueue)
    p.add_argument("queue")
    p.add_argument("name")
    p.add_argument("--payload", help="JSON payload")
    p.add_argument("--id", help="job id (deduplicates)")
    p.add_argument("--priority", help="critical|high|normal|low|bulk or 1-10")
    p.add_argument("--delay", type=float, help="seconds before it may run")
    p.add_argument("--app", help="module[:attribute] of the App, to validate the payload")

    command("redis", "run the embedded Redis (Valkey) in the foreground", _cmd_redis)

    p = command("run", "embedded Redis + workers + a demo workload", _cmd_run)
    p.add_argument("--app", default=None, help="module[:attribute] to serve (default: the demo)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")

    p = command("bench", "benchmarks: throughput, latency, Redis cost per job", _cmd_bench)
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--quick", action="store_true", help="a short run (smaller numbers)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.fn(args))
    except (CliError, StreamqError, msgspec.ValidationError) as exc:
        print(f"streamq: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
