"""``streamq pause|resume QUEUE``: stop or restart workers taking new jobs from a queue."""

from __future__ import annotations

import argparse
import json

from streamq._app import App


async def command(app: App, args: argparse.Namespace) -> int:
    paused = args.command == "pause"
    await (app.pause(args.queue) if paused else app.resume(args.queue))
    if args.json:
        print(json.dumps({"queue": args.queue, "paused": paused}))
    else:
        print(f"{args.queue} {'paused: workers take no new jobs' if paused else 'resumed'}")
    return 0
