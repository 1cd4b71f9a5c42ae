"""A fault-injecting TCP proxy in front of a Redis server (loopback only, bounded).

It forwards everything both ways, except once: the first request that contains a given byte
string (the SHA of a script, say) is forwarded to the server, and the server's reply to it is
dropped and the client's connection closed. The client (redis-py with its Retry) reconnects
through the proxy and sends the request again, so the server runs it twice: the fault a lost
reply makes. The proxy stops by itself after ``lifetime`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from streamq._scripts import source


def script_sha(name: str) -> bytes:
    """What an EVALSHA of script ``name`` (e.g. ``"fetch-4"``) carries."""
    return hashlib.sha1(source(name).encode()).hexdigest().encode()


class DropOneReply:
    """``async with DropOneReply(url) as proxy:`` then connect to ``proxy.url``; ``arm(match)``
    makes the next request containing ``match`` lose its reply; ``dropped`` counts the replies
    dropped."""

    def __init__(self, target_url: str, *, lifetime: float = 120.0) -> None:
        parts = urlsplit(target_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy only fronts a loopback server")
        self._host = parts.hostname
        self._port = parts.port or 6379
        self._path = parts.path
        self._lifetime = lifetime
        self._match: bytes | None = None
        self._fired: bytes | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0
        self.url = ""

    def arm(self, match: bytes) -> None:
        self._match = match

    async def __aenter__(self) -> DropOneReply:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}{self._path}"
        self._stopper = asyncio.get_running_loop().call_later(self._lifetime, self._close)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopper.cancel()
        self._close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_r, server_w = await asyncio.open_connection(self._host, self._port)
        except OSError:
            client_w.close()
            self._tasks.discard(task)
            return
        # Set while the matching request is on its way: the server's next bytes are its reply.
        armed = asyncio.Event()

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if self._match is not None and self._match in data:
                    self._fired, self._match = self._match, None
                    armed.set()
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if armed.is_set():
                    if data.startswith(b"-NOSCRIPT"):
                        # Not run at all: let it through and catch the run that follows.
                        armed.clear()
                        self._match = self._fired
                    else:
                        self.dropped += 1
                        return
                client_w.write(data)
                await client_w.drain()

        try:
            pumps = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            for writer in (client_w, server_w):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            self._tasks.discard(task)


@contextlib.asynccontextmanager
async def drop_one_reply(target_url: str) -> AsyncIterator[DropOneReply]:
    async with DropOneReply(target_url) as proxy:
        yield proxy
