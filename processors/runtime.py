"""The Runtime of one deployment: its settings, store, providers and queue names, shared by the
job handlers, the routes and the demo (``runtime_of(app)``).

The store and providers are built on first use, so building the App touches neither the disk
nor the network.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import streamq
from processors.config import QUEUES
from processors.errors import ProcessorsError
from processors.providers.base import Providers
from processors.providers.factory import build_providers
from processors.providers.ratelimit import RateLimiter, SharedRateLimiter
from processors.providers.retrying import with_retries
from processors.settings import Settings
from processors.store import Store

__all__ = ["Runtime", "runtime_of"]

_RUNTIMES: weakref.WeakKeyDictionary[streamq.App, Runtime] = weakref.WeakKeyDictionary()


class Runtime:
    """One deployment's state, attached to its App (found again with ``runtime_of(app)``)."""

    def __init__(
        self,
        app: streamq.App,
        settings: Settings,
        *,
        store: Store | None = None,
        providers: Providers | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self._store = store
        self._providers = providers
        self._limits_shared = False
        self.setup_done = False
        _RUNTIMES[app] = self

    @property
    def store(self) -> Store:
        if self._store is None:
            path = self.settings.store_path
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._store = Store(path)
        return self._store

    @property
    def providers(self) -> Providers:
        if self._providers is None:
            built = build_providers(self.settings.providers)
            # The simulator has no retries of its own (the HTTP clients do).
            if self.settings.providers.kind == "simulator":
                built = with_retries(built)
            self._providers = built
        if not self._limits_shared:
            self._limits_shared = True
            share_rate_limits(self, self._providers)
        return self._providers

    def queue(self, logical: str) -> str:
        return self.settings.queue(logical)

    def queues(self) -> list[str]:
        """Every queue of this deployment, by its real name."""
        return [self.queue(q) for q in QUEUES]

    def key(self, *parts: str) -> str:
        """A Redis key of this deployment (locks, caches, indexes): ``processors:{ns}:...``."""
        return ":".join(("processors", "{" + self.settings.namespace + "}", *parts))

    async def redis(self) -> Any:
        """The App's Redis client, connected: for the application's own keys (``key``)."""
        await self.app.connect()
        return self.app.redis

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def runtime_of(app: object) -> Runtime:
    """The Runtime ``processors.app.build_app`` attached to ``app`` (an App, or a handler's
    ``ctx.app``); raises ProcessorsError for an App built elsewhere."""
    rt = _RUNTIMES.get(app) if isinstance(app, streamq.App) else None
    if rt is None:
        raise ProcessorsError("this streamq App was not built by processors.app.build_app")
    return rt


def share_rate_limits(rt: Runtime, providers: Providers) -> None:
    """Moves the HTTP clients' rate limits into Redis, so every worker process of this
    deployment shares each service's limit (10 requests/s to the transaction API in all,
    not per process). Providers without HTTP clients (the simulator) are left alone."""
    for provider in (providers.chain, providers.tokens, providers.polymarket, providers.alerts):
        for attr in ("http", "gamma", "data"):
            service = getattr(provider, attr, None)
            local = getattr(service, "limiter", None)
            if isinstance(local, RateLimiter):
                key = rt.key("ratelimit", str(getattr(service, "name", attr)))
                shared = SharedRateLimiter(rt.redis, key, local.rate, burst=local.burst)
                setattr(service, "limiter", shared)  # noqa: B010 - the service's type varies
