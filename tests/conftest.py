"""Shared fixtures: real servers (an embedded Valkey per session, the machine's Redis 7),
apps with unique queue names, and in-process workers."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis

from streamq import App, Worker

REDIS7_URL = os.environ.get("STREAMQ_TEST_REDIS7_URL", "redis://127.0.0.1:6379/9")
REQUIRE_REDIS7 = os.environ.get("STREAMQ_REQUIRE_REDIS7") == "1"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Every ``async def`` test runs on asyncio through AnyIO's pytest plugin (marked here,
    before that plugin looks for the mark)."""
    import inspect

    if collector.funcnamefilter(name) and inspect.iscoroutinefunction(obj):  # type: ignore[attr-defined]
        pytest.mark.anyio(obj)


def _reachable(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def valkey_server(request: pytest.FixtureRequest) -> str:
    """An embedded Valkey 9 for the whole session (database 0 of the one that
    ``streamq.testing``'s ``streamq_server`` starts, which gives each test using
    ``streamq_redis_url`` a database of its own); or the server at ``$STREAMQ_TEST_VALKEY_URL``
    (e.g. one running the ops/ ACL, to check that the restricted user can do everything the
    suite does)."""
    if os.environ.get("STREAMQ_TEST_VALKEY_URL"):
        return os.environ["STREAMQ_TEST_VALKEY_URL"]
    return f"{request.getfixturevalue('streamq_server')}/0"


@pytest.fixture(scope="session")
def redis7_server() -> str:
    if not _reachable(REDIS7_URL):
        message = f"the machine's Redis 7 is not reachable at {REDIS7_URL}"
        if REQUIRE_REDIS7:
            pytest.fail(message + " (STREAMQ_REQUIRE_REDIS7=1: CI must cover both servers)")
        pytest.skip(message)
    return REDIS7_URL


@pytest.fixture(params=["valkey9", "redis7"])
def redis_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on both servers."""
    name = "valkey_server" if request.param == "valkey9" else "redis7_server"
    return str(request.getfixturevalue(name))


@pytest.fixture
def valkey_url(valkey_server: str) -> str:
    return valkey_server


_SESSION_NAMES: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _leave_the_shared_redis_clean() -> Iterator[None]:
    """The machine's Redis is shared: at the end, every queue a test named is deleted from it,
    including those of tests that did not go through ``app_factory``."""
    yield
    if _SESSION_NAMES and _reachable(REDIS7_URL):
        purge_queues(REDIS7_URL, _SESSION_NAMES)


@pytest.fixture
def uniq() -> Callable[[str], str]:
    """Unique names per test, so tests never see each other's keys; the queues named here are
    deleted after the test by ``app_factory``."""
    made: list[str] = []

    def make(base: str = "q") -> str:
        name = f"{base}-{secrets.token_hex(4)}"
        made.append(name)
        _SESSION_NAMES.append(name)
        return name

    make.made = made  # type: ignore[attr-defined]
    return make


@pytest.fixture
def queue(uniq: Callable[[str], str]) -> str:
    return uniq("q")


def purge_queues(url: str, queues: list[str]) -> None:
    """Deletes every key of the given queues (tests only: the product never scans)."""
    client = redis.Redis.from_url(url)
    try:
        for name in queues:
            keys = list(client.scan_iter(match=f"sq:{{{name}}}:*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
            client.srem("sq:queues", name)
    finally:
        client.close()


@pytest.fixture
async def app_factory(
    redis_url: str, uniq: Callable[[str], str]
) -> AsyncIterator[Callable[..., App]]:
    """Builds Apps on the test's server; closes them and deletes the test's queues after."""
    apps: list[App] = []

    def make(name: str | None = None, url: str | None = None, **options: Any) -> App:
        app = App(name or f"test-{secrets.token_hex(3)}", redis_url=url or redis_url, **options)
        apps.append(app)
        return app

    yield make
    urls = {redis_url}
    for app in apps:
        urls.add(app.url or redis_url)
        await app.close()
    for url in urls:
        with contextlib.suppress(redis.RedisError):
            purge_queues(url, list(uniq.made))  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def _running(app: App, **options: Any) -> AsyncIterator[Worker]:
    import asyncio

    worker = Worker(app, **options)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        done, _ = await asyncio.wait([task], timeout=worker.grace + 15)
        if not done:
            import sys

            for t in asyncio.all_tasks():  # say where shutdown is stuck, then fail
                t.print_stack(limit=6, file=sys.stderr)
            raise AssertionError("worker did not stop in time")
        task.result()


@pytest.fixture
def run_worker() -> Callable[..., contextlib.AbstractAsyncContextManager[Worker]]:
    """``async with run_worker(app, concurrency=10) as worker:`` runs a Worker in-process."""
    return _running
