"""``streamq worker APP``: runs the handlers of an app (metrics on ``--metrics-port``).

``--concurrency`` is ``N`` (jobs at once across the queues without a limit of their own),
``queue=N,...`` (per-queue limits, over those the app declares), or both: ``20,balances=50``.

The default metrics port, 9108, falls back to a free port when it is taken (a worker started
beside ``streamq run``), as ``run``'s API port does; a port given explicitly must be free.

``--processes N`` (default 1: this process is the worker) runs N worker processes under a
supervisor that restarts them and forwards SIGTERM (``_supervise``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import NamedTuple

from streamq._errors import InvalidJob
from streamq._keys import validate_queue
from streamq._worker import run_worker
from streamq.cli._app_spec import load_app
from streamq.cli._output import CliError, UsageError

log = logging.getLogger(__name__)


class Concurrency(NamedTuple):
    """``--concurrency``: the default for queues without a limit, and per-queue limits."""

    default: int = 50
    per_queue: dict[str, int] = {}  # noqa: RUF012 - a NamedTuple default, never mutated

    def __str__(self) -> str:
        """The option as given on a command line (``streamq run`` passes it on)."""
        return ",".join([str(self.default), *(f"{q}={n}" for q, n in self.per_queue.items())])


def parse_concurrency(text: str) -> Concurrency:
    """``N``, ``queue=N,...`` or both; raises UsageError naming the bad part."""
    default, per_queue = 50, {}
    for part in (p.strip() for p in text.split(",")):
        queue, equals, number = part.rpartition("=")
        if not number.isdigit() or int(number) < 1 or (equals and not queue):
            raise UsageError(f"expected N or queue=N with N >= 1, not {part!r}")
        if not queue:
            default = int(number)
            continue
        try:
            per_queue[validate_queue(queue)] = int(number)
        except InvalidJob as exc:
            raise UsageError(str(exc)) from None
    return Concurrency(default, per_queue)


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
    if args.processes < 1:
        raise UsageError(f"--processes must be >= 1, not {args.processes}")
    if args.isolation_processes is not None and args.isolation_processes < 1:
        raise UsageError("--isolation-processes must be >= 1")
    app = load_app(args.app)
    if args.redis_url:
        app.use_redis_url(args.redis_url)
    if args.processes > 1:
        from streamq.cli._supervise import Supervisor

        return asyncio.run(Supervisor(args, app).run())
    if args.metrics_port:
        serve_metrics(
            args.metrics_host,
            args.metrics_port,
            fall_back=not getattr(args, "metrics_port_given", False),
        )
    queues = args.queues.split(",") if args.queues else None
    concurrency: Concurrency = args.concurrency
    asyncio.run(
        run_worker(
            app,
            queues=queues,
            concurrency=concurrency.default,
            queue_concurrency=concurrency.per_queue,
            grace=args.grace,
            unknown_grace=args.unknown_grace,
            processes=args.isolation_processes,
        )
    )
    return 0
