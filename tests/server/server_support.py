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


def secret(name: str) -> str:
    """The test token of ``name``: long enough for the server's 32-character minimum."""
    return f"{name}-{'s' * 32}"


def token_spec(spec: str) -> str:
    """``"reader:read,admin:admin"`` -> the same tokens, named, with their long secrets."""
    entries = []
    for entry in spec.split(","):
        name, _, scopes = entry.partition(":")
        entries.append(f"{name}={secret(name)}:{scopes}")
    return ",".join(entries)


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret(name)}"}


# Without tokens, writes must say they are JSON (a web page cannot forge that).
JSON = {"Content-Type": "application/json"}


@dataclass
class Served:
    """A running server: its base URL, the App behind it and a client on it."""

    url: str
    app: App
    queue: str
    other_queue: str
    client: httpx.AsyncClient


def register_tasks(app: App, queue: str, other_queue: str) -> None:
    @app.task("greet", queue=queue, max_attempts=1, public=True)
    async def greet(ctx: Context, req: Greet) -> str:
        return f"hello {req.who}" * req.times

    @app.task("steps", queue=queue, max_attempts=1, public=True)
    async def steps(ctx: Context, req: Steps) -> int:
        for i in range(req.steps):
            await ctx.progress((i + 1) * 100 / req.steps, f"step {i + 1}")
        if req.fail:
            raise streamq.Fatal("asked to fail")
        return req.steps

    @app.task("anything", queue=other_queue, public=True)
    async def anything(ctx: Context, req: dict[str, Any]) -> None:
        return None


class SseMessage(msgspec.Struct, kw_only=True):
    id: str | None = None
    event: str | None = None
    data: str = ""
    comment: str | None = None

    def json(self) -> Any:
        return msgspec.json.decode(self.data)


async def sse_messages(response: httpx.Response) -> Any:
    """Parses an event stream into SseMessages (comments included, as messages with
    ``comment`` set) until the server closes it."""
    current = SseMessage()
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data or current.id is not None or current.event is not None:
                current.data = "\n".join(data)
                yield current
            current, data = SseMessage(), []
        elif line.startswith(":"):
            yield SseMessage(comment=line[1:].strip())
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                current.id = value
            elif field == "event":
                current.event = value
            elif field == "data":
                data.append(value)


async def collect_events(
    client: httpx.AsyncClient,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    stop_after: int | None = None,
    until: Any = None,
) -> list[SseMessage]:
    """The events (not comments) of a stream until it ends, ``stop_after`` events have come,
    or ``until(message)`` is true; then the connection is dropped."""
    events: list[SseMessage] = []
    async with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for message in sse_messages(response):
            if message.comment is not None:
                continue
            events.append(message)
            if stop_after is not None and len(events) >= stop_after:
                break
            if until is not None and until(message):
                break
    return events
