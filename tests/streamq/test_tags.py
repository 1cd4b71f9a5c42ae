"""Tags: given at enqueue or taken from a task's index fields, listed with ``tag=``, and out
of the tag's set whenever the record goes (deleted on any path, or expired)."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from streamq import App, Context, EnqueueRequest, Fatal, InvalidJob, _keys
from streamq._scripts import Settlement
from streamq._types import LANES


class Sync(msgspec.Struct, frozen=True):
    wallet: str
    depth: int = 1


def _app(app_factory, queue: str, **options) -> App:
    app = app_factory(**options)

    @app.task("sync", queue=queue, index=["wallet", "depth"])
    async def sync(ctx: Context, req: Sync) -> str:
        return req.wallet

    @app.task("t", queue=queue, max_attempts=1)
    async def t(ctx: Context, x: int) -> int:
        if x < 0:
            raise Fatal("negative")
        return x

    return app


async def _ids(app: App, queue: str, tag: str, **filters) -> list[str]:
    return [j.id async for j in app.jobs(queue, tag=tag, **filters)]


async def _settle(app: App, queue: str, outcome: str, count: int = 1) -> list[str]:
    jobs = (
        await app.scripts.fetch(
            queue, consumer="w", count=count, promote_limit=0, may_take_suspect=True, lanes=LANES
        )
    ).jobs
    await app.scripts.settle(
        queue,
        [
            Settlement(outcome, j.job_id, j.lane, j.entry_id, j.fence, data="e", ttl_ms=600_000)  # type: ignore[arg-type]
            for j in jobs
        ],
    )
    return [j.job_id for j in jobs]


async def test_given_and_indexed_tags(app_factory, queue) -> None:
    app = _app(app_factory, queue)
    await app.enqueue("sync", Sync("W1"), id="s1")
    await app.enqueue("sync", Sync("W2", depth=3), id="s2", tags=["team:a"])
    await app.enqueue("t", 1, id="t1", tags=["team:a", "team:a", "urgent"])
    await app.enqueue_many(
        [EnqueueRequest(name="sync", payload={"wallet": "W1", "depth": 2}, id="s3")]
    )
    await app.enqueue("sync", Sync("W2"), id="s2", tags=["late"])  # deduplicated: no new tag

    assert await _ids(app, queue, "wallet:W1") == ["s3", "s1"]  # newest first
    assert await _ids(app, queue, "team:a") == ["t1", "s2"]
    assert await _ids(app, queue, "depth:3") == ["s2"]
    assert await _ids(app, queue, "late") == []
    assert await _ids(app, queue, "nobody") == []
    # The record lists its tags, given ones first, then its indexed payload fields'.
    t1, s2 = await app.job(queue, "t1"), await app.job(queue, "s2")
    assert t1 is not None and t1.tags == ["team:a", "urgent"]
    assert s2 is not None and set(s2.tags) == {"team:a", "wallet:W2", "depth:3"}
    # Filters apply to the tagged jobs' records.
    assert await _ids(app, queue, "team:a", name="sync") == ["s2"]
    [done] = await _settle(app, queue, "completed")
    assert done == "s1"
    assert await _ids(app, queue, "wallet:W1", state="completed") == ["s1"]
    assert await _ids(app, queue, "wallet:W1", state="queued") == ["s3"]
    page = await app.list_jobs(queue, tag="team:a", limit=1)
    assert [j.id for j in page.jobs] == ["t1"] and page.next is not None
    rest = await app.list_jobs(queue, tag="team:a", limit=1, cursor=page.next)
    assert [j.id for j in rest.jobs] == ["s2"]

    for bad in (["two words"], [""], ["x" * 201], [f"t{i}" for i in range(21)]):
        with pytest.raises(InvalidJob):
            await app.enqueue("t", 1, id="never", tags=bad)
    assert await app.job(queue, "never") is None
    with pytest.raises(InvalidJob):
        await _ids(app, queue, "bad tag")


@pytest.mark.parametrize("path", ["remove", "keep_last", "purge", "drain", "dedup", "expiry"])
async def test_out_of_the_set_with_the_record(app_factory, queue, path) -> None:
    options = {"keep_last": 1} if path == "keep_last" else {}
    app = _app(app_factory, queue, **options)
    key = _keys.tag_index(queue, "mine")
    payload = -1 if path == "purge" else 1
    await app.enqueue("t", payload, id="j", tags=["mine"], dedup_ttl=0.01)
    assert await app.redis.zcard(key) == 1
    if path == "remove":
        await _settle(app, queue, "completed")
        await app.remove(queue, "j")
    elif path == "keep_last":
        await _settle(app, queue, "completed")
        await app.enqueue("t", 2, id="k")
        await _settle(app, queue, "completed")
        assert await app.job(queue, "j") is None
    elif path == "purge":
        await _settle(app, queue, "dead")
        assert await app.purge_dead(queue) == 1
    elif path == "drain":
        assert await app.drain(queue) == 1
    elif path == "dedup":
        await _settle(app, queue, "completed")
        await asyncio.sleep(0.05)
        await app.enqueue_many([EnqueueRequest(name="t", payload=2, id="j", dedup_ttl=0.01)])
        assert (await app.job(queue, "j")).state == "queued"  # type: ignore[union-attr]
    else:
        app.result_ttl = 0.05
        jobs = (
            await app.scripts.fetch(
                queue, consumer="w", count=1, promote_limit=0, may_take_suspect=True, lanes=LANES
            )
        ).jobs
        await app.scripts.settle(
            queue,
            [
                Settlement("completed", j.job_id, j.lane, j.entry_id, j.fence, ttl_ms=50)
                for j in jobs
            ],
        )
        while await app.redis.exists(_keys.job(queue, "j")):
            await asyncio.sleep(0.02)
        # The next job given the tag sweeps the expired entry; a listing never shows it.
        assert await _ids(app, queue, "mine") == []
        await app.enqueue("t", 3, id="next", tags=["mine"])
        assert await app.redis.zrange(key, 0, -1) == [b"next"]
        return
    assert await app.redis.zcard(key) == 0
    assert await _ids(app, queue, "mine") == []


async def test_replay_keeps_the_tags(app_factory, queue) -> None:
    app = _app(app_factory, queue)
    await app.enqueue("t", -1, id="d", tags=["mine"])
    await _settle(app, queue, "dead")
    assert await app.replay_dead(queue) == 1
    assert await _ids(app, queue, "mine", state="queued") == ["d"]
    await _settle(app, queue, "completed")
    await app.remove(queue, "d")
    assert await app.redis.zcard(_keys.tag_index(queue, "mine")) == 0


async def test_index_fields_apply_to_every_way_of_enqueueing(app_factory, queue) -> None:
    import anyio.to_thread

    from streamq import enqueue_verified

    app = _app(app_factory, queue)
    await app.enqueue_many([EnqueueRequest(name="sync", payload=Sync("W9"), id="many")])
    await enqueue_verified(app, [EnqueueRequest(name="sync", payload=Sync("W9"), id="verified")])
    try:
        await anyio.to_thread.run_sync(lambda: app.enqueue_sync("sync", Sync("W9"), id="sync"))
    finally:
        await anyio.to_thread.run_sync(app.close_sync)  # its loop thread ends with it
    await app.enqueue("sync", Sync("W9"), id="plain")
    assert sorted(await _ids(app, queue, "wallet:W9")) == ["many", "plain", "sync", "verified"]
