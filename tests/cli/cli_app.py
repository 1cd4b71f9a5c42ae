"""The app CLI tests run in worker subprocesses (its queue comes from the environment)."""

from __future__ import annotations

import asyncio
import os

import msgspec

from streamq import App, Context, Fatal

QUEUE = os.environ.get("CLI_TEST_QUEUE", "cli-test")

app = App("cli-test")


@app.task("echo", queue=QUEUE, public=True)
async def echo(ctx: Context, text: str) -> str:
    await ctx.progress(50, "half way")
    await asyncio.sleep(0.01)
    if text == "fatal":
        raise Fatal(f"REFUSED: {text}")
    return text.upper()


class Mail(msgspec.Struct, frozen=True, kw_only=True):
    to: str
    copies: int = 1


@app.task("mail", queue=QUEUE)
async def mail(ctx: Context, message: Mail) -> int:
    return message.copies
