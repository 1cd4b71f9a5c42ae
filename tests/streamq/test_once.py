"""Effectively-once under a lost reply: a script whose reply the connection lost is re-sent by
the client, and the re-sent call must change nothing a user or a metric can observe."""

from __future__ import annotations

import asyncio
from collections import Counter

from streamq import App, Context, Fatal
from streamq._metrics import JOBS_FENCED
from tests.streamq.faults import drop_one_reply, script_sha
from tests.streamq.test_worker import until


async def _event_types(app: App, queue: str, job: str) -> Counter[str]:
    events = await app.broker.redis.xrange(f"sq:{{{queue}}}:events")
    return Counter(f[b"t"].decode() for _, f in events if f[b"j"].decode() == job)


async def _totals(app: App, queue: str) -> dict[str, int]:
    return (await app.stats(queue)).totals


def _fenced(queue: str) -> float:
    return JOBS_FENCED.labels(queue)._value.get()


async def test_a_lost_fetch_reply_still_runs_the_job_once(
    app_factory, queue, run_worker, redis_url
) -> None:
    """With max_deliveries=1 a fetch that ran twice used to dead-letter the job unrun."""
    runs: list[str] = []
    producer = app_factory()
    async with drop_one_reply(redis_url) as proxy:
        app = app_factory(url=proxy.url)
        for a in (producer, app):

            @a.task("once", queue=queue, max_deliveries=1, lease=1.0)
            async def once(ctx: Context, x: int) -> int:
                runs.append(ctx.job_id)
                return x

        h = await producer.enqueue("once", 7)
        proxy.arm(script_sha("fetch-4"))
        async with run_worker(app, reclaim_interval=0.2):
            assert await h.result(timeout=10) == 7
            await asyncio.sleep(1.5)  # past the lease: a lost delivery would be reclaimed now
        assert proxy.dropped == 1
    job = await producer.job(queue, h.id)
    assert job is not None and job.state == "completed" and job.deliveries == 1
    assert runs == [h.id]
    events = await _event_types(producer, queue, h.id)
    assert events == Counter(queued=1, active=1, completed=1)
    totals = await _totals(producer, queue)
    assert totals.get("completed") == 1 and "reclaimed" not in totals and "dead" not in totals


async def test_a_lost_settle_reply_reports_applied(
    app_factory, queue, run_worker, redis_url
) -> None:
    producer = app_factory()
    async with drop_one_reply(redis_url) as proxy:
        app = app_factory(url=proxy.url)
        for a in (producer, app):

            @a.task("job", queue=queue)
            async def job(ctx: Context, x: int) -> int:
                return x + 1

        fenced_before = _fenced(queue)
        proxy.arm(script_sha("settle-2"))
        async with run_worker(app):
            h = await producer.enqueue("job", 1)
            assert await h.result(timeout=10) == 2
            await until(lambda: proxy.dropped == 1)
        assert _fenced(queue) == fenced_before
    events = await _event_types(producer, queue, h.id)
    assert events == Counter(queued=1, active=1, completed=1)
    assert (await _totals(producer, queue)).get("completed") == 1


async def test_a_lost_enqueue_reply_answers_created(app_factory, queue, redis_url) -> None:
    async with drop_one_reply(redis_url) as proxy:
        app = app_factory(url=proxy.url)

        @app.task("job", queue=queue)
        async def job(ctx: Context, x: int) -> int:
            return x

        await app.connect()
        await app.broker.register_queue(queue)
        proxy.arm(script_sha("enqueue-3"))
        h = await app.enqueue("job", 1, id="lost-reply-1")
        assert proxy.dropped == 1
        assert h.deduplicated is False and await h.state() == "queued"
        assert await _event_types(app, queue, h.id) == Counter(queued=1)
        assert (await _totals(app, queue)).get("enqueued") == 1
        again = await app.enqueue("job", 1, id="lost-reply-1")
        assert again.deduplicated is True


async def test_a_lost_renew_reply_keeps_the_lease(
    app_factory, queue, run_worker, redis_url
) -> None:
    producer = app_factory()
    runs: list[int] = []
    async with drop_one_reply(redis_url) as proxy:
        app = app_factory(url=proxy.url)
        for a in (producer, app):

            @a.task("slow", queue=queue, lease=0.6, max_deliveries=1)
            async def slow(ctx: Context, x: int) -> int:
                runs.append(x)
                await asyncio.sleep(1.5)
                return x

        async with run_worker(app, renew_interval=0.15, reclaim_interval=0.2):
            h = await producer.enqueue("slow", 3)
            await until(lambda: runs)
            proxy.arm(script_sha("renew-2"))
            assert await h.result(timeout=10) == 3
        assert proxy.dropped == 1
    job = await producer.job(queue, h.id)
    assert job is not None and job.state == "completed" and job.deliveries == 1 and runs == [3]
    events = await _event_types(producer, queue, h.id)
    assert events == Counter(queued=1, active=1, completed=1)


async def test_a_lost_cancel_reply_cancels_once(app_factory, queue, redis_url) -> None:
    producer = app_factory()
    async with drop_one_reply(redis_url) as proxy:
        app = app_factory(url=proxy.url)
        for a in (producer, app):

            @a.task("job", queue=queue)
            async def job(ctx: Context, x: int) -> int:
                return x

        h = await producer.enqueue("job", 1, delay=60)
        await app.connect()
        proxy.arm(script_sha("cancel-3"))
        assert await app.cancel(queue, h.id) is True
        assert proxy.dropped == 1
    assert await h.state() == "cancelled"
    events = await _event_types(producer, queue, h.id)
    assert events == Counter(scheduled=1, cancelled=1)
    assert (await _totals(producer, queue)).get("cancelled") == 1


async def test_a_lost_progress_reply_records_one_event(
    app_factory, queue, run_worker, redis_url
) -> None:
    producer = app_factory()
    async with drop_one_reply(redis_url) as proxy:
        app = app_factory(url=proxy.url)
        answers: list[bool] = []
        for a in (producer, app):

            @a.task("job", queue=queue)
            async def job(ctx: Context, x: int) -> int:
                answers.append(await ctx.progress(50, "half"))
                return x

        proxy.arm(script_sha("progress-1"))
        async with run_worker(app):
            h = await producer.enqueue("job", 1)
            assert await h.result(timeout=10) == 1
        assert proxy.dropped == 1
    assert answers == [True]
    events = await _event_types(producer, queue, h.id)
    assert events == Counter(queued=1, active=1, progress=1, completed=1)


async def test_a_lost_replay_reply_counts_the_replayed_job(
    app_factory, queue, run_worker, redis_url
) -> None:
    producer = app_factory()
    async with drop_one_reply(redis_url) as proxy:
        app = app_factory(url=proxy.url)
        for a in (producer, app):

            @a.task("job", queue=queue)
            async def job(ctx: Context, x: int) -> int:
                raise Fatal("no")

        async with run_worker(producer):
            h = await producer.enqueue("job", 1)
            await until(lambda: _is_dead(h), timeout=10)
        await app.connect()
        proxy.arm(script_sha("replay-2"))
        assert await app.replay_dead(queue) == 1
        assert proxy.dropped == 1
    assert await h.state() == "queued"
    assert (await _event_types(producer, queue, h.id))["queued"] == 2  # enqueued, replayed


async def _is_dead(h: object) -> bool:
    return await h.state() == "dead"  # type: ignore[attr-defined,no-any-return]
