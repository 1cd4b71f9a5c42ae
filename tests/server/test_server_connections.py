"""Connection limits (issue 11, findings 5 and 8): idle and slowloris connections are closed
by the request-head deadline, the connection cap holds, a request framed two ways is refused
and its connection closed, a slow body is a 408, and a client leaving mid-body is no ERROR."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from server_support import register_tasks

from server import ServerSettings, create_app, running_server
from streamq import App

Start = Callable[..., contextlib.AbstractAsyncContextManager[str]]


@pytest.fixture
def start(valkey_url: str, uniq: Callable[[str], str]) -> Start:
    """``async with start(**settings) as url``: a server on the session's Valkey."""

    @contextlib.asynccontextmanager
    async def run(**options: Any) -> AsyncIterator[str]:
        settings = ServerSettings(rate_limit_per_second=0, stats_sample_seconds=0, **options)
        app = App("conn", redis_url=valkey_url)
        register_tasks(app, uniq("conn"), uniq("conn-other"))
        try:
            async with running_server(create_app(settings, app)) as url:
                yield url
        finally:
            await app.close()

    return run


def _host(url: str) -> bytes:
    return url.removeprefix("http://").encode()


def _address(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host, int(port)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closes the connection (reads what it sends meanwhile)."""
    started = time.perf_counter()
    async with asyncio.timeout(seconds):
        while await reader.read(65536):
            pass
    return time.perf_counter() - started


async def test_a_slowloris_client_is_dropped_within_10s_by_default(start: Start) -> None:
    async with start() as url:
        reader, writer = await asyncio.open_connection(*_address(url))
        connected = time.perf_counter()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        await writer.drain()

        async def trickle() -> None:
            for i in range(30):  # one header line a second, never the blank line
                await asyncio.sleep(1)
                writer.write(b"X-Slow-%d: 1\r\n" % i)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

        dripping = asyncio.create_task(trickle())
        try:
            await _closed_within(reader, 10)
        finally:
            dripping.cancel()
            writer.close()
        assert time.perf_counter() - connected < 10


async def test_1000_idle_connections_neither_block_a_client_nor_stay_open(start: Start) -> None:
    async with start(header_timeout_seconds=2.0) as url:
        idle = [await asyncio.open_connection(*_address(url)) for _ in range(1000)]
        try:
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                started = time.perf_counter()
                r = await client.get("/healthz")
                assert r.status_code == 200
                assert time.perf_counter() - started < 1.0
            # Every idle one is closed by the request-head deadline (2 s here).
            closed = await asyncio.gather(*(_closed_within(r, 6) for r, _ in idle))
            assert max(closed) < 6
        finally:
            for _, writer in idle:
                writer.close()


async def test_connections_past_the_cap_are_closed_at_once(start: Start) -> None:
    async with start(max_connections=20, header_timeout_seconds=30) as url:
        held = [await asyncio.open_connection(*_address(url)) for _ in range(20)]
        try:
            reader, writer = await asyncio.open_connection(*_address(url))
            assert await _closed_within(reader, 2) < 2
            writer.close()
            # One held connection leaving frees a place for a real client.
            held.pop()[1].close()
            await asyncio.sleep(0.2)
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                assert (await client.get("/healthz")).status_code == 200
        finally:
            for _, w in held:
                w.close()


async def test_idle_keep_alive_connections_are_closed(start: Start) -> None:
    async with start(keep_alive_seconds=1.0) as url:
        reader, writer = await asyncio.open_connection(*_address(url))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        assert await _closed_within(reader, 4) < 4
        writer.close()


async def test_content_length_with_chunked_is_refused_and_the_connection_closed(
    start: Start,
) -> None:
    async with start() as url:
        reader, writer = await asyncio.open_connection(*_address(url))
        queue = "x"
        writer.write(
            b"POST /v1/queues/%s/jobs HTTP/1.1\r\nHost: %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (queue.encode(), _host(url))
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400")
        assert b"connection: close" in head.lower()
        assert await _closed_within(reader, 2) < 2
        writer.close()


async def test_a_slow_body_is_a_408(start: Start) -> None:
    async with start(body_timeout_seconds=1.0) as url, httpx.AsyncClient(base_url=url) as c:
        queue = (await c.get("/v1/queues")).json()["queues"][0]["name"]
        reader, writer = await asyncio.open_connection(*_address(url))
        writer.write(
            b"POST /v1/queues/%s/jobs HTTP/1.1\r\nHost: %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            % (queue.encode(), _host(url))
        )
        await writer.drain()
        started = time.perf_counter()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 408"), head
        assert time.perf_counter() - started < 3
        writer.close()


async def test_a_client_leaving_mid_body_logs_no_error(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with start() as url, httpx.AsyncClient(base_url=url) as c:
        queue = (await c.get("/v1/queues")).json()["queues"][0]["name"]
        _reader, writer = await asyncio.open_connection(*_address(url))
        writer.write(
            b"POST /v1/queues/%s/jobs HTTP/1.1\r\nHost: %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            b'{"name": "greet"' % (queue.encode(), _host(url))
        )
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.close()
        await asyncio.sleep(0.5)
        # The server still serves, and logged the departure below ERROR, with no traceback.
        assert (await c.get("/healthz")).status_code == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == []
    assert any("left during POST" in r.getMessage() for r in caplog.records)


def test_the_limits_come_from_the_environment() -> None:
    settings = ServerSettings.from_env(
        {
            "STREAMQ_MAX_CONNECTIONS": "10",
            "STREAMQ_HEADER_TIMEOUT": "3",
            "STREAMQ_KEEP_ALIVE": "2",
            "STREAMQ_BODY_TIMEOUT": "4",
        }
    )
    assert (settings.max_connections, settings.header_timeout_seconds) == (10, 3.0)
    assert (settings.keep_alive_seconds, settings.body_timeout_seconds) == (2.0, 4.0)
