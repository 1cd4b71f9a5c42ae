"""Commands that work on a connected App (inspect, tail, dead, pause, resume, enqueue), and the
one rule for which Redis they use: ``--redis-url``, else ``$STREAMQ_REDIS_URL``, else the running
embedded server of ``./.streamq``. They never start a server, and with none running they
create nothing (no ``.streamq/``, no process)."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable

from streamq._app import App
from streamq._embedded import DEFAULT_DIR, Embedded
from streamq.cli._output import CliError
from streamq.cli._read import check_queue as check

Command = Callable[[App, argparse.Namespace], Awaitable[int]]

NO_SERVER = (
    f"no streamq server is running for ./{DEFAULT_DIR} — start one with `streamq run` "
    "or set STREAMQ_REDIS_URL"
)


def existing_redis_url(args: argparse.Namespace) -> str:
    """The Redis a read or operate command talks to; raises CliError (exit 1) if there is
    none: ``--redis-url``, else ``$STREAMQ_REDIS_URL``, else this directory's running server."""
    url = getattr(args, "redis_url", None) or os.environ.get("STREAMQ_REDIS_URL")
    if url:
        return str(url)
    url = Embedded(DEFAULT_DIR).running_url()
    if url is None:
        raise CliError(NO_SERVER)
    return url


def on_app(
    fn: Command,
    check_queue: bool = True,
    check_args: Callable[[argparse.Namespace], None] | None = None,
) -> Callable[[argparse.Namespace], int]:
    """Runs ``fn(app, args)`` with a connected App; first ``check_args(args)`` (usage errors
    come before any connection), then checks the queue is known."""

    def command(args: argparse.Namespace) -> int:
        if check_args is not None:
            check_args(args)
        url = existing_redis_url(args)

        async def go() -> int:
            app = App("cli", redis_url=url)
            try:
                await app.connect()
                if check_queue and getattr(args, "queue", None) is not None:
                    await check(app, args.queue)
                return await fn(app, args)
            finally:
                await app.close()

        return asyncio.run(go())

    return command
