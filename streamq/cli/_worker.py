"""``streamq worker APP``: runs the handlers of an app (metrics on ``--metrics-port``)."""

from __future__ import annotations

import argparse
import asyncio

from streamq._worker import run_worker
from streamq.cli._app_spec import load_app
from streamq.cli._output import CliError


def command(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    if args.redis_url:
        app.use_redis_url(args.redis_url)
    if args.metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(args.metrics_port, addr=args.metrics_host)
        except OSError as exc:
            raise CliError(
                f"cannot serve metrics on {args.metrics_host}:{args.metrics_port} ({exc}); "
                "pass --metrics-port N, or 0 to turn metrics off"
            ) from exc
    queues = args.queues.split(",") if args.queues else None
    asyncio.run(run_worker(app, queues=queues, concurrency=args.concurrency, grace=args.grace))
    return 0
