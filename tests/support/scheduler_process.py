"""One scheduler process of a processors deployment, for tests that run several at once:

    python -m tests.support.scheduler_process SETTINGS_JSON QUEUE SECONDS

builds the deployment the JSON ``Settings`` describe, runs ``streamq.Scheduler`` on its queue
``QUEUE`` (a logical name) for ``SECONDS`` once it is up, then prints how many ticks this
process enqueued (ticks another process had already enqueued are not counted)."""

from __future__ import annotations

import asyncio
import json
import sys

import msgspec

import streamq
from processors.app import build_app
from processors.runtime import runtime_of
from processors.settings import Settings


async def main(settings: Settings, queue: str, seconds: float) -> int:
    app = build_app(settings)
    scheduler = streamq.Scheduler(app, [runtime_of(app).queue(queue)])
    task = asyncio.create_task(scheduler.run())
    # A run time counted from start-up, not a shared deadline: on a loaded machine a process
    # may take seconds to start, and each must still see several ticks.
    await asyncio.sleep(seconds)
    scheduler.stop()
    await task
    await app.close()
    return scheduler.fired


if __name__ == "__main__":
    settings = msgspec.json.decode(sys.argv[1], type=Settings)
    fired = asyncio.run(main(settings, sys.argv[2], float(sys.argv[3])))
    print(json.dumps({"fired": fired}))
