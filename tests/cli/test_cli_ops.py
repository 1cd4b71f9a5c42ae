"""`streamq cancel|retry|promote QUEUE ID...` and `streamq queue drain|clean QUEUE`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import cli

from streamq import App, Context, EnqueueRequest


async def test_job_and_queue_commands(
    app_factory: Callable[..., App],
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = uniq("cli-ops")
    app = app_factory()

    @app.task("t", queue=queue)
    async def t(ctx: Context, n: int) -> int:
        return n

    await app.enqueue_many(
        [EnqueueRequest(name="t", payload=i, id=f"d{i}", delay=600) for i in range(4)]
    )
    url = ("--redis-url", redis_url)
    r = await cli(capsys, "promote", queue, "d0", "d1", *url)
    assert r.code == 0 and "promoted 2 of 2" in r.out
    r = await cli(capsys, "promote", queue, "d0", "nobody", "--json", *url)
    assert r.code == 1
    assert r.json() == {
        "action": "promote",
        "done": [],
        "refused": {"d0": "queued"},
        "missing": ["nobody"],
    }
    r = await cli(capsys, "cancel", queue, "d0", "d2", *url)
    assert r.code == 0 and "cancelled 2 of 2" in r.out
    r = await cli(capsys, "retry", queue, "d0", "d1", *url)
    assert r.code == 1 and "d1: not retried, it is queued" in r.out
    assert (await app.job(queue, "d0")).state == "queued"  # type: ignore[union-attr]

    # Destructive: without a terminal, --yes is required.
    r = await cli(capsys, "queue", "drain", queue, *url)
    assert r.code == 2 and "--yes" in r.err
    r = await cli(capsys, "queue", "drain", queue, "--yes", "--json", *url)
    assert r.json() == {"queue": queue, "action": "drain", "removed": 3}
    r = await cli(capsys, "queue", "clean", queue, "--older-than", "0", "--yes", *url)
    assert r.code == 0 and "removed 1 jobs" in r.out
    assert [j async for j in app.jobs(queue)] == []
