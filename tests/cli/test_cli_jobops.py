"""`streamq priority` and `streamq queue delete` against real servers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cli_support import cli

from streamq import App, Context


def _app(app_factory: Callable[..., App], queue: str) -> App:
    app = app_factory()

    @app.task("t", queue=queue)
    async def t(ctx: Context, n: int) -> int:
        return n

    return app


async def test_priority(
    app_factory: Callable[..., App],
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("cli-prio")
    app = _app(app_factory, queue)
    url = ("--redis-url", redis_url)
    await app.enqueue("t", 1, id="a")
    await app.enqueue("t", 2, id="b", priority="high")
    await app.enqueue("t", 3, id="c")
    await app.cancel(queue, "c")

    r = await cli(capsys, "priority", queue, "high", "a", "b", "c", "nobody", "--json", *url)
    assert r.code == 1  # some ids were refused or missing
    assert r.json() == {
        "lane": "high",
        "moved": ["a"],
        "unchanged": ["b"],
        "refused": {"c": "cancelled"},
        "missing": ["nobody"],
    }
    assert (await app.job(queue, "a")).priority == "high"  # type: ignore[union-attr]
    r = await cli(capsys, "priority", queue, "1", "a", *url)
    assert r.code == 0 and "moved 1 of 1 jobs" in r.out and "lane bulk" in r.out
    r = await cli(capsys, "priority", queue, "urgent", "a", *url)
    assert r.code == 2 and "priority must be one of" in r.err


async def test_queue_delete(
    app_factory: Callable[..., App],
    run_worker: Any,
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("cli-del")
    app = _app(app_factory, queue)
    url = ("--redis-url", redis_url)
    for i in range(20):
        await app.enqueue("t", i, id=f"j{i}")
    # No terminal to ask on: --yes is required.
    r = await cli(capsys, "queue", "delete", queue, *url)
    assert r.code == 2 and "pass --yes" in r.err
    async with run_worker(app):
        await app.handle(queue, "j0").result(timeout=20)
        r = await cli(capsys, "queue", "delete", queue, "--yes", *url)
        assert r.code == 1 and "live worker(s) serve queue" in r.err and "--force" in r.err
        assert await app.job(queue, "j0") is not None
        r = await cli(capsys, "queue", "delete", queue, "--yes", "--force", "--json", *url)
        assert r.code == 0, r.err
        assert r.json() == {"queue": queue, "action": "delete", "jobs": 20}
    assert queue not in await app.queue_names()
    assert await app.job(queue, "j5") is None


async def test_inspect_jobs_by_tag(
    app_factory: Callable[..., App],
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("cli-tag")
    app = _app(app_factory, queue)
    url = ("--redis-url", redis_url)
    for i in range(4):
        await app.enqueue("t", i, id=f"j{i}", tags=["even" if i % 2 == 0 else "odd"])
    r = await cli(capsys, "inspect", "jobs", queue, "--tag", "odd", "--json", *url)
    assert r.code == 0, r.err
    assert [j["id"] for j in r.json()["jobs"]] == ["j3", "j1"]
    r = await cli(capsys, "inspect", "jobs", queue, "--tag", "even", *url)
    assert r.code == 0 and "j2" in r.out and "j0" in r.out and "j1" not in r.out
