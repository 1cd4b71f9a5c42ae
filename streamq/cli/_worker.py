"""``streamq worker APP``: runs the handlers of an app (metrics on ``--metrics-port``).

The default metrics port, 9108, falls back to a free port when it is taken (a worker started
beside ``streamq run``), as ``run``'s API port does; a port given explicitly must be free."""

from __future__ import annotations

import argparse
import asyncio
import logging

from streamq._worker import run_worker
from streamq.cli._app_spec import load_app
from streamq.cli._output import CliError

log = logging.getLogger(__name__)


def serve_metrics(host: str, port: int, *, fall_back: bool) -> int:
    """Serves Prometheus metrics on ``host:port`` (any free port if that one is taken and
    ``fall_back``); returns the port. Raises CliError if it cannot."""
    from prometheus_client import start_http_server

    try:
        server, _ = start_http_server(port, addr=host)
    except OSError as exc:
        if not fall_back:
            raise CliError(
                f"cannot serve metrics on {host}:{port} ({exc}); "
                "pass --metrics-port N, or 0 to turn metrics off"
            ) from exc
        try:
            server, _ = start_http_server(0, addr=host)
        except OSError as again:
            raise CliError(f"cannot serve metrics on {host} ({again})") from again
        chosen = int(server.server_address[1])
        log.warning(
            "metrics port %d is taken (another worker?): metrics on http://%s:%d/metrics",
            port,
            host,
            chosen,
        )
        return chosen
    return int(server.server_address[1])


def command(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    if args.redis_url:
        app.use_redis_url(args.redis_url)
    if args.metrics_port:
        serve_metrics(
            args.metrics_host,
            args.metrics_port,
            fall_back=not getattr(args, "metrics_port_given", False),
        )
    queues = args.queues.split(",") if args.queues else None
    asyncio.run(run_worker(app, queues=queues, concurrency=args.concurrency, grace=args.grace))
    return 0
