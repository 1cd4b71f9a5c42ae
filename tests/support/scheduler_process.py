"""One scheduler process of a processors deployment, for tests that run several at once:

    python -m tests.support.scheduler_process SETTINGS_JSON QUEUE UNTIL

builds the deployment the JSON ``Settings`` describe, runs ``streamq.Scheduler`` on its queue
``QUEUE`` (a logical name) until the epoch time ``UNTIL``, then prints how many ticks this
process enqueued (ticks another process had already enqueued are not counted)."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import msgspec

import streamq
from processors.app import build_app
from processors.runtime import runtime_of
from processors.settings import Settings


async def main(settings: Settings, queue: str, until: float) -> int:
    app = build_app(settings)
    scheduler = streamq.Scheduler(app, [runtime_of(app).queue(queue)])
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(max(0.0, until - time.time()))
    scheduler.stop()
    await task
    await app.close()
    return scheduler.fired


if __name__ == "__main__":
    settings = msgspec.json.decode(sys.argv[1], type=Settings)
    fired = asyncio.run(main(settings, sys.argv[2], float(sys.argv[3])))
    print(json.dumps({"fired": fired}))
