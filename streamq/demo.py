"""A small example application: what ``streamq run`` serves when nothing else is named.

streamq worker streamq.demo:app

It follows the application contract of ``streamq.cli`` like any application: ``app``, an
``example_job`` for the curl line ``streamq run`` prints, and the ``demo_workload`` it runs.
"""

from __future__ import annotations

import asyncio
import random

import msgspec

from streamq import App, Backoff, Context, Fatal

app = App("demo")
QUEUE = "demo"


class Resize(msgspec.Struct, frozen=True, kw_only=True):
    image: str
    width: int = 640


class Resized(msgspec.Struct, frozen=True, kw_only=True):
    image: str
    width: int
    bytes: int


@app.task(
    "resize-image",
    queue=QUEUE,
    timeout=30,
    max_attempts=3,
    backoff=Backoff.exponential(0.5, maximum=5),
    public=True,  # the demo's clients enqueue it over the HTTP API (`streamq run` shows how)
)
async def resize_image(ctx: Context, req: Resize) -> Resized:
    for step in range(1, 5):
        await asyncio.sleep(random.uniform(0.02, 0.1))
        await ctx.progress(step * 25, f"pass {step} of 4")
    if random.random() < 0.1:
        raise ConnectionError("image store timed out")  # retried with backoff
    return Resized(image=req.image, width=req.width, bytes=req.width * 137)


@app.task("send-email", queue=QUEUE, max_attempts=2, public=True)
async def send_email(ctx: Context, to: str) -> str:
    if "@" not in to:
        raise Fatal(f"INVALID_ADDRESS: {to!r}")  # straight to the dead-letter stream
    await asyncio.sleep(0.01)
    return f"sent to {to}"


example_job = {"queue": QUEUE, "name": "resize-image", "payload": {"image": "example"}}


async def demo_workload(app: App) -> None:
    """a light stream of resize-image and send-email jobs

    A few a second: images to resize, mails to send (some to a bad address, so the dead-letter
    stream has something to show). Runs until cancelled."""
    n = 0
    while True:
        n += 1
        await app.enqueue(
            "resize-image",
            {"image": f"img-{n}.png", "width": random.choice([320, 640, 1280])},
            priority=random.choice(["high", "normal", "normal", "low"]),
        )
        to = f"user{n}@example.com" if n % 7 else f"user{n}-at-example.com"
        await app.enqueue("send-email", to)
        await asyncio.sleep(0.25)
