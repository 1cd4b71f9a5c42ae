"""Commands that work on a connected App (inspect, tail, dead, pause, resume)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

from streamq._app import App
from streamq.cli._read import check_queue as check

Command = Callable[[App, argparse.Namespace], Awaitable[int]]


def on_app(fn: Command, check_queue: bool = True) -> Callable[[argparse.Namespace], int]:
    """Runs ``fn(app, args)`` with a connected App; first checks the queue is known."""

    def command(args: argparse.Namespace) -> int:
        async def go() -> int:
            app = App("cli", redis_url=args.redis_url)
            try:
                await app.connect()
                if check_queue and getattr(args, "queue", None) is not None:
                    await check(app, args.queue)
                return await fn(app, args)
            finally:
                await app.close()

        return asyncio.run(go())

    return command
