"""Figures for the bounded waits and connection limits (not a test; prints, asserts nothing):

    .venv/bin/python tests/server/outage_figures.py

Starts a private Valkey and the server, then prints how long each Redis-backed route takes to
answer with Redis frozen (SIGSTOP) and gone, and how a client fares beside 1,000 idle
connections."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from outage_support import private_valkey
from server_support import JSON, register_tasks

from server import ServerSettings, create_app, running_server
from streamq import App

ROUTES = [
    ("POST", "/v1/queues/q/jobs", {"name": "greet", "payload": {"who": "x"}}),
    ("GET", "/v1/queues/q/jobs/seed", None),
    ("DELETE", "/v1/queues/q/jobs/seed", None),
    ("GET", "/v1/queues", None),
    ("GET", "/v1/queues/q", None),
    ("POST", "/v1/queues/q/pause", None),
    ("GET", "/v1/queues/q/dead-letters", None),
    ("GET", "/readyz", None),
    ("GET", "/metrics", None),
]


async def _round(client: httpx.AsyncClient, label: str) -> None:
    async def one(method: str, path: str, body: object) -> tuple[str, int, float]:
        started = time.perf_counter()
        r = await client.request(method, path, json=body)
        return f"{method} {path}", r.status_code, time.perf_counter() - started

    answers = await asyncio.gather(*(one(*route) for route in ROUTES))
    for name, status, seconds in answers:
        print(f"  {label:7} {name:36} {status}  {seconds * 1000:7.0f} ms")
    print(f"  {label:7} slowest {max(a[2] for a in answers) * 1000:.0f} ms")


async def main() -> None:
    settings = ServerSettings(stats_sample_seconds=0, header_timeout_seconds=5.0)
    print(f"request deadline {settings.request_deadline_seconds}s, header timeout 5s")
    with tempfile.TemporaryDirectory() as tmp, private_valkey(Path(tmp)) as valkey:
        app = App("figures", redis_url=valkey.url)
        register_tasks(app, "q", "q-other")
        await app.enqueue("greet", {"who": "seed"}, id="seed", queue="q")
        async with (
            running_server(create_app(settings, app)) as url,
            httpx.AsyncClient(base_url=url, timeout=30, headers=JSON) as client,
        ):
            valkey.freeze()
            await _round(client, "frozen")
            valkey.thaw()
            host, _, port = url.removeprefix("http://").rpartition(":")
            idle = [await asyncio.open_connection(host, int(port)) for _ in range(1000)]
            times = []
            for _ in range(20):
                started = time.perf_counter()
                await client.get("/v1/queues/q")
                times.append(time.perf_counter() - started)
            print(
                f"  beside 1000 idle connections: GET /v1/queues/q median "
                f"{statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms"
            )
            started = time.perf_counter()
            await asyncio.gather(*(r.read() for r, _ in idle))
            print(f"  all 1000 idle connections closed after {time.perf_counter() - started:.1f} s")
            for _, w in idle:
                w.close()
            valkey.stop()
            await _round(client, "gone")
        await app.close()


if __name__ == "__main__":
    asyncio.run(main())
