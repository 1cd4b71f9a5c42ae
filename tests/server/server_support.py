"""Helpers shared by the server tests: test tasks, tokens, the Served handle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

import streamq
from streamq import App, Context


class Greet(msgspec.Struct, frozen=True, kw_only=True):
    who: str
    times: int = 1


class Steps(msgspec.Struct, frozen=True, kw_only=True):
    steps: int = 3
    fail: bool = False


TOKENS = "rtok:read,wtok:write,atok:admin,rwtok:read+write"
BEARER = {name: {"Authorization": f"Bearer {name}"} for name in ("rtok", "wtok", "atok", "rwtok")}


@dataclass
class Served:
    """A running server: its base URL, the App behind it and a client on it."""

    url: str
    app: App
    queue: str
    other_queue: str
    client: httpx.AsyncClient


def register_tasks(app: App, queue: str, other_queue: str) -> None:
    @app.task("greet", queue=queue, max_attempts=1)
    async def greet(ctx: Context, req: Greet) -> str:
        return f"hello {req.who}" * req.times

    @app.task("steps", queue=queue, max_attempts=1)
    async def steps(ctx: Context, req: Steps) -> int:
        for i in range(req.steps):
            await ctx.progress((i + 1) * 100 / req.steps, f"step {i + 1}")
        if req.fail:
            raise streamq.Fatal("asked to fail")
        return req.steps

    @app.task("anything", queue=other_queue)
    async def anything(ctx: Context, req: dict[str, Any]) -> None:
        return None
