"""Many SSE clients on one queue while thousands of jobs run: every client receives every
event, in order, and the server's memory stays bounded (one shared Redis reader per queue)."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from server_support import register_tasks

import streamq
from server import ServerSettings, create_app, running_server
from server.context import server_state

CLIENTS = 200
JOBS = 5000
_ID = re.compile(rb"(?:^|\n)id: ([0-9]+-[0-9]+)\n")


@pytest.fixture
def redis_url(valkey_url: str) -> str:
    """This load test runs on the embedded Valkey only."""
    return valkey_url


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Client:
    """Counts the ids it receives, checks their order and hashes them (no per-event objects,
    so 200 clients x 15,000 events stay cheap for the test process itself)."""

    def __init__(self) -> None:
        self.count = 0
        self.last = (0, 0)
        self.last_id = ""
        self.digest = hashlib.sha256()
        self.in_order = True
        self.connected = anyio.Event()
        self.target: str | None = None
        self.reached = anyio.Event()

    def expect(self, last_id: str) -> None:
        """Sets ``reached`` once the event with ``last_id`` has arrived."""
        self.target = last_id
        if self.last_id == last_id:
            self.reached.set()

    async def run(self, client: httpx.AsyncClient, path: str) -> None:
        buffer = b""
        async with client.stream("GET", path) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                self.connected.set()
                buffer += chunk
                cut = buffer.rfind(b"\n\n")
                if cut < 0:
                    continue
                complete, buffer = buffer[: cut + 2], buffer[cut + 2 :]
                for raw in _ID.findall(complete):
                    ms, seq = raw.split(b"-")
                    key = (int(ms), int(seq))
                    if key <= self.last:
                        self.in_order = False
                    self.last = key
                    self.digest.update(raw + b"\n")
                    self.count += 1
                    self.last_id = raw.decode()
                if self.last_id == self.target:
                    self.reached.set()


@pytest.mark.slow
async def test_200_clients_each_get_every_event_of_5000_jobs(
    app_factory: Callable[..., Any], uniq: Callable[[str], str], run_worker: Callable[..., Any]
) -> None:
    app = app_factory(events_maxlen=100_000)
    queue = uniq("load")
    register_tasks(app, queue, uniq("load-other"))
    settings = ServerSettings(
        heartbeat_seconds=5,
        rate_limit_per_second=0,
        sse_max_per_token=CLIENTS + 10,
        enqueue_per_second=0,  # a load test: the quota has tests of its own
        # The clients share the server's event loop, which the fan-out to 200 streams keeps
        # busy: a keep-alive timer due while a POST waits for the loop would close the
        # connection under it (the usual keep-alive race, made likely by one shared loop).
        keep_alive_seconds=120,
    )
    asgi = create_app(settings, app)
    rss_start, _ = rss_mb()
    clients = [Client() for _ in range(CLIENTS)]
    limits = httpx.Limits(max_connections=CLIENTS + 10)
    started = time.perf_counter()
    async with (
        running_server(asgi) as url,
        httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http,
        anyio.create_task_group() as tg,
    ):
        for c in clients:
            tg.start_soon(c.run, http, f"/v1/queues/{queue}/events")
        with anyio.fail_after(30):
            for c in clients:
                await c.connected.wait()
        state = server_state_of(asgi)
        assert state.hub.subscriber_count == CLIENTS
        assert len(state.hub.feeds) == 1  # one Redis reader for all of them

        for start in range(0, JOBS, 1000):
            batch = [
                {"name": "greet", "payload": {"who": str(i)}, "id": f"load-{i}"}
                for i in range(start, start + 1000)
            ]
            r = await http.post(f"/v1/queues/{queue}/jobs:batch", json={"jobs": batch})
            assert r.status_code == 202, r.text
        async with run_worker(app, concurrency=100):
            with anyio.fail_after(120):
                for i in range(JOBS):
                    await app.handle(queue, f"load-{i}").wait(60)
        ran = time.perf_counter() - started

        expected: list[streamq.Event] = []
        after = "0-0"
        while batch_events := await app.read_events(queue, after=after, count=10_000):
            # The API's audit records are in the stream but not sent to SSE clients.
            expected.extend(e for e in batch_events if e.type != "audit")
            after = batch_events[-1].id
        with anyio.fail_after(60):
            for c in clients:
                c.expect(expected[-1].id)
                await c.reached.wait()
        rss_end, rss_peak = rss_mb()
        tg.cancel_scope.cancel()

    digest = hashlib.sha256(b"".join(e.id.encode() + b"\n" for e in expected)).hexdigest()
    by_type: dict[str, int] = {}
    for event in expected:
        by_type[event.type] = by_type.get(event.type, 0) + 1
    assert by_type["queued"] == by_type["active"] == by_type["completed"] == JOBS
    for c in clients:
        assert c.in_order
        assert c.count == len(expected)
        assert c.digest.hexdigest() == digest
    print(
        f"\n{CLIENTS} SSE clients x {len(expected)} events ({JOBS} jobs): all delivered in "
        f"{ran:.1f} s; RSS {rss_start:.0f} MB -> {rss_end:.0f} MB (peak {rss_peak:.0f} MB)"
    )
    # Server, worker and 200 clients share this process; a per-client copy of the stream
    # would be 200 x 15,000 events, far beyond this.
    assert rss_peak - rss_start < 400


def server_state_of(asgi: Any) -> Any:
    class _Request:
        app = asgi

    return server_state(_Request())  # type: ignore[arg-type]
