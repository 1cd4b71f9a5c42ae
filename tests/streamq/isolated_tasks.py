"""Module-level handlers for the process-isolation tests (a subprocess imports them by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec

from streamq import Context


class Marker(msgspec.Struct, frozen=True, kw_only=True):
    dir: str


class Ran(msgspec.Struct, frozen=True, kw_only=True):
    pid: int
    attempt: int


def stuck(ctx: Context, req: Marker) -> None:
    """Writes its pid (one file per attempt), then blocks as a hung library call would."""
    Path(req.dir, f"{ctx.attempt}.pid").write_text(str(os.getpid()))
    time.sleep(3600)


def crash(ctx: Context, req: Marker) -> None:
    os._exit(3)


async def reporting(ctx: Context, req: Marker) -> Ran:
    await ctx.progress(50, "half way")
    await ctx.log("from a subprocess", pid=os.getpid(), odd=object())
    return Ran(pid=os.getpid(), attempt=ctx.attempt)


def plain(ctx: Context, req: Marker) -> Ran:
    ctx.progress_from_thread(25, "a quarter")
    ctx.log_from_thread("plain too")
    return Ran(pid=os.getpid(), attempt=ctx.attempt)
