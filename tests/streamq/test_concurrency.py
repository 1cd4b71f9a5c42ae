"""Per-queue concurrency: declared on the App, overridden per Worker (and by ``streamq worker
--concurrency queue=N``); queues without a limit share the worker's ``concurrency``."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import pytest

from streamq import ConfigurationError, Context, EnqueueRequest
from streamq.cli._output import UsageError
from streamq.cli._worker import Concurrency, parse_concurrency


async def until(check: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_a_worker_never_exceeds_the_per_queue_limits(app_factory, uniq, run_worker) -> None:
    balances, analysis, other, spare = uniq("bal"), uniq("ana"), uniq("oth"), uniq("spa")
    # Declared in code (balances 6, analysis 2); the worker overrides analysis to 3.
    app = app_factory(concurrency={balances: 6, analysis: 2})
    running: Counter[str] = Counter()
    most: Counter[str] = Counter()
    samples: list[dict[str, int]] = []
    done: Counter[str] = Counter()

    def register(queue: str) -> None:
        @app.task(f"work-{queue}", queue=queue)
        async def work(ctx: Context, x: int) -> int:
            running[ctx.queue] += 1
            most[ctx.queue] = max(most[ctx.queue], running[ctx.queue])
            samples.append(dict(running))
            await asyncio.sleep(0.02)
            running[ctx.queue] -= 1
            done[ctx.queue] += 1
            return x

    for queue in (balances, analysis, other, spare):
        register(queue)
    per_queue = 60
    async with run_worker(app, concurrency=4, queue_concurrency={analysis: 3}) as worker:
        assert worker.capacity == 6 + 3 + 4
        await app.enqueue_many(
            [
                EnqueueRequest(name=f"work-{q}", payload=i)
                for i in range(per_queue)
                for q in (balances, analysis, other, spare)
            ]
        )
        await until(lambda: sum(done.values()) == 4 * per_queue)
    print(f"most at once: {dict(most)} over {len(samples)} samples")
    for sample in samples:
        assert sample.get(balances, 0) <= 6
        assert sample.get(analysis, 0) <= 3
        # The queues without a limit of their own share the worker's 4.
        assert sample.get(other, 0) + sample.get(spare, 0) <= 4
    # The limits are reached, not merely respected.
    assert most[balances] == 6 and most[analysis] == 3


async def test_bad_limits_are_refused(app_factory, queue) -> None:
    with pytest.raises(ConfigurationError, match=">= 1"):
        app_factory(concurrency={queue: 0})
    app = app_factory()
    with pytest.raises(ConfigurationError):
        app.set_concurrency("no{braces}", 5)


def test_the_cli_option_takes_a_default_and_per_queue_limits() -> None:
    assert parse_concurrency("50") == Concurrency(50, {})
    assert parse_concurrency("balances=50,analysis=10") == Concurrency(
        50, {"balances": 50, "analysis": 10}
    )
    c = parse_concurrency("8, enrichment=20")
    assert c == Concurrency(8, {"enrichment": 20}) and str(c) == "8,enrichment=20"
    for bad in ("many", "q=0", "q=", "=5", "q{x}=3", "-1"):
        with pytest.raises(UsageError):
            parse_concurrency(bad)
