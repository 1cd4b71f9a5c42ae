"""The Broker: one Redis client, its typed scripts, the retention settings and the queue
registry. Every internal module takes a Broker (never the App facade that composes it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import anyio

from streamq import _keys
from streamq._connection import RedisClient, broker_errors, make_client
from streamq._embedded import DEFAULT_DIR, Embedded
from streamq._errors import ConfigurationError
from streamq._scripts import Retention, Scripts


class HasBroker(Protocol):
    """Something with a broker: an App, or a Broker itself (what ``Lock`` and ``invalidate``
    take)."""

    @property
    def broker(self) -> Broker: ...


class Broker:
    """Redis at ``url``, else ``$STREAMQ_REDIS_URL``, else the embedded Valkey of
    ``embedded_dir`` (started on first :meth:`connect`, shared by every streamq process there).

    ``redis`` and ``scripts`` raise ``ConfigurationError`` before :meth:`connect`."""

    def __init__(
        self,
        *,
        url: str | None = None,
        retention: Retention | None = None,
        embedded_dir: Path | str | None = None,
    ) -> None:
        self.url = url
        self.retention = retention or Retention()
        self._embedded_dir = Path(embedded_dir) if embedded_dir else DEFAULT_DIR
        self._embedded: Embedded | None = None
        self._client: RedisClient | None = None
        self._scripts: Scripts | None = None
        self._registered_queues: set[str] = set()
        self._connect_lock = anyio.Lock()

    @property
    def broker(self) -> Broker:
        """Itself: whatever takes "something with a broker" takes a Broker too."""
        return self

    @property
    def redis(self) -> RedisClient:
        """The redis.asyncio client (after :meth:`connect`)."""
        if self._client is None:
            raise ConfigurationError("the app is not connected yet: await app.connect() first")
        return self._client

    @property
    def scripts(self) -> Scripts:
        """The Lua scripts, one typed method each (after :meth:`connect`)."""
        if self._scripts is None:
            raise ConfigurationError("the app is not connected yet: await app.connect() first")
        return self._scripts

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def connect(self) -> Broker:
        """Connects (starting the embedded server if needed); safe to call many times.
        Raises ``ConfigurationError`` for a bad URL."""
        if self._client is not None:
            return self
        async with self._connect_lock:
            if self._client is not None:
                return self
            url = self.url or os.environ.get("STREAMQ_REDIS_URL") or None
            if url is None:
                self._embedded = Embedded(self._embedded_dir)
                url = await anyio.to_thread.run_sync(self._embedded.attach_or_start)
            self.url = url
            client = make_client(url)
            self._scripts = Scripts(client, self.retention)
            self._client = client
        return self

    async def close(self) -> None:
        """Closes the client; stops the embedded server if this process started it."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
        if self._embedded is not None and self._embedded.owned:
            await anyio.to_thread.run_sync(self._embedded.stop)

    async def ping(self) -> bool:
        """True if Redis answers; never raises."""
        try:
            await self.connect()
            return bool(await self.redis.ping())
        except Exception:
            return False

    async def register_queue(self, queue: str) -> None:
        """Adds ``queue`` to the registry (once per process)."""
        if queue in self._registered_queues:
            return
        await self.connect()
        with broker_errors(f"registering queue {queue}"):
            await self.redis.sadd(_keys.registry(), queue)
        self._registered_queues.add(queue)
