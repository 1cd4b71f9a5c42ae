"""A whole processors deployment in one event loop, for tests and benchmarks: the App on its
own queue names, workers, and optionally the HTTP server on a free loopback port.

    async with deployment(redis_url, providers=..., serve=True) as d:
        r = await d.client.post("/api/v1/analyses/wallets/dashboard-analysis", json=...)

On exit everything stops and the deployment's Redis keys are deleted (by a SCAN over its own
prefixes: acceptable in tests, never done by the product).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import msgspec

import streamq
from processors.api import operations
from processors.app import build_app
from processors.providers.base import Providers
from processors.runtime import Runtime, runtime_of
from processors.settings import Settings
from processors.store import Store
from server import ServerSettings, create_app, running_server

__all__ = ["Deployment", "deployment"]


@dataclass
class Deployment:
    app: streamq.App
    runtime: Runtime
    settings: Settings
    url: str | None
    client: httpx.AsyncClient | None

    def queue(self, logical: str) -> str:
        return self.settings.queue(logical)

    @property
    def http(self) -> httpx.AsyncClient:
        assert self.client is not None, "started without serve=True"
        return self.client


@contextlib.asynccontextmanager
async def deployment(
    redis_url: str,
    *,
    providers: Providers | None = None,
    store_path: str = ":memory:",
    serve: bool = False,
    workers: int = 1,
    concurrency: int = 50,
    schedules: bool = False,
    **settings: Any,
) -> AsyncIterator[Deployment]:
    """Builds, runs and afterwards removes one deployment (queue suffix random per call)."""
    options: dict[str, Any] = {
        "backoff_scale": 0.02,
        "lock_wait": 30.0,
        "enrichment_wait": 5.0,
        "queue_suffix": f"-t{secrets.token_hex(4)}",
    }
    options.update(settings)
    s = Settings(redis_url=redis_url, store_path=store_path, schedules=schedules, **options)
    store = Store(store_path)
    app = build_app(s, store=store, providers=providers)
    rt = runtime_of(app)
    running = [streamq.Worker(app, concurrency=concurrency) for _ in range(workers)]
    tasks = [asyncio.create_task(w.run()) for w in running]
    try:
        await _until_registered(app, rt.queues(), len(running), tasks)
        if serve:
            asgi = create_app(
                ServerSettings(
                    heartbeat_seconds=0.5, rate_limit_per_second=0, stats_sample_seconds=0
                ),
                app,
                extra_operations=operations(),
            )
            async with (
                running_server(asgi) as url,
                # Like a JSON API client: without tokens the server takes writes only as JSON,
                # bodyless POSTs (pause, resume) included.
                httpx.AsyncClient(
                    base_url=url, timeout=60, headers={"content-type": "application/json"}
                ) as client,
            ):
                yield Deployment(app=app, runtime=rt, settings=s, url=url, client=client)
        else:
            yield Deployment(app=app, runtime=rt, settings=s, url=None, client=None)
    finally:
        for w in running:
            w.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _purge(app, rt)
        await app.close()
        store.close()


async def _until_registered(
    app: streamq.App, queues: list[str], workers: int, tasks: list[asyncio.Task[None]]
) -> None:
    """Returns once every queue counts ``workers`` live workers, so what a test reads first
    (``/health/queues``, stats) already sees them; raises if a worker died on the way."""
    with anyio.fail_after(30):
        while True:
            for task in tasks:
                if task.done():
                    task.result()
                    raise RuntimeError("a worker stopped while starting")
            counts = [(await app.stats(q)).workers for q in queues]
            if min(counts, default=workers) >= workers:
                return
            await asyncio.sleep(0.01)


async def _purge(app: streamq.App, rt: Runtime) -> None:
    with contextlib.suppress(Exception):
        r = app.redis
        patterns = [f"sq:{{{q}}}:*" for q in rt.queues()]
        patterns.append(f"processors:{{{rt.settings.namespace}}}:*")
        patterns.append(f"*{rt.settings.namespace}*")
        for pattern in patterns:
            keys = [k async for k in r.scan_iter(match=pattern, count=1000)]
            for i in range(0, len(keys), 500):
                await r.delete(*keys[i : i + 500])
        await r.srem("sq:queues", *rt.queues())


def decode(data: Any, kind: type[Any]) -> Any:
    """A job result (builtins) as the Struct it was."""
    return msgspec.convert(data, kind)
