"""Flows: parents wait for children across queues, policies, nesting, sweeps, crashes."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from streamq import App, Context, Fatal, Flow, InvalidJob, JobFailed, _keys
from streamq._flows import on_job_finished, record_child_outcome
from tests.streamq.procs import spawn_worker, stop


class Work(msgspec.Struct, frozen=True, kw_only=True):
    n: int
    fail: bool = False


def flow_app(app_factory: Callable[..., App], qa: str, qb: str) -> tuple[App, list[Any]]:
    """Children ``square`` on both queues; parent ``summarise`` reads them."""
    app = app_factory()
    seen: list[Any] = []

    async def square(ctx: Context, w: Work) -> int:
        if w.fail:
            raise Fatal(f"child {w.n} failed")
        return w.n * w.n

    app.task("square-a", queue=qa)(square)
    app.task("square-b", queue=qb)(square)

    @app.task("summarise", queue=qa)
    async def summarise(ctx: Context, label: str) -> dict[str, Any]:
        children = await ctx.children()
        seen.append(children)
        done = [c for c in children if c.state == "completed"]
        failed = [c for c in children if c.state != "completed"]
        return {
            "label": label,
            "completed": len(done),
            "failed": len(failed),
            "sum": sum(c.result for c in done if isinstance(c.result, int)),
            "labels": [c.result["label"] for c in done if isinstance(c.result, dict)],
            "errors": sorted({c.error or "" for c in failed}),
        }

    return app, seen


def children(n: int, failing: int = 0) -> list[Flow]:
    return [
        Flow(
            name="square-a" if i % 2 else "square-b",
            payload=Work(n=i, fail=i < failing),
        )
        for i in range(n)
    ]


async def test_fifty_children_across_two_queues(app_factory, uniq, run_worker) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, seen = flow_app(app_factory, qa, qb)
    root = await app.enqueue_flow(
        Flow(name="summarise", payload="all", id="root-1", children=children(50))
    )
    assert root.state_at_enqueue == "waiting-children"
    job = await root.info()
    assert job is not None and job.state == "waiting-children"
    events = await app.read_events(qa)
    assert [e.type for e in events if e.job == "root-1"] == ["waiting-children"]
    async with run_worker(app, concurrency=20):
        result = await root.result(timeout=20)
    assert result["completed"] == 50 and result["failed"] == 0
    assert result["sum"] == sum(i * i for i in range(50))
    (kids,) = seen
    assert {(c.queue, c.name) for c in kids} == {(qa, "square-a"), (qb, "square-b")}
    assert [c.result for c in kids] == [i * i for i in range(50)]
    state = await app.flow_state(qa, "root-1")
    assert state is not None and state.state == "completed"
    assert state.jobs == 51 and state.counts == {"completed": 51} and state.progress == 1.0
    types = [e.type for e in await app.read_events(qa) if e.job == "root-1"]
    assert types == ["waiting-children", "queued", "active", "completed"]


async def test_threshold_runs_parent_with_ten_of_fifty_failed(app_factory, uniq, run_worker):
    qa, qb = uniq("fa"), uniq("fb")
    app, _ = flow_app(app_factory, qa, qb)
    root = await app.enqueue_flow(
        Flow(
            name="summarise",
            payload="t",
            policy="threshold",
            threshold=0.8,
            children=children(50, failing=10),
        )
    )
    async with run_worker(app, concurrency=20):
        result = await root.result(timeout=20)
    assert (result["completed"], result["failed"]) == (40, 10)
    assert len(result["errors"]) == 10
    assert all(e.startswith("Fatal: child ") for e in result["errors"])


async def test_threshold_dead_letters_parent_with_eleven_failed(app_factory, uniq, run_worker):
    qa, qb = uniq("fa"), uniq("fb")
    app, seen = flow_app(app_factory, qa, qb)
    root = await app.enqueue_flow(
        Flow(
            name="summarise",
            payload="t",
            policy="threshold",
            threshold=0.8,
            children=children(50, failing=11),
        )
    )
    async with run_worker(app, concurrency=20):
        with pytest.raises(JobFailed) as failed:
            await root.result(timeout=20)
    assert failed.value.error == "11 of 50 children failed; threshold 0.8 needs 40 completed"
    assert failed.value.reason == "children_failed"
    assert seen == []  # the parent never ran
    (letter,) = [d for d in await app.dead_letters(qa) if d.job == root.id]
    assert letter.reason == "children_failed"
    state = await app.flow_state(qa, root.id)
    assert state is not None and state.state == "dead"
    assert state.counts == {"dead": 12, "completed": 39}


async def test_policies_fail_and_ignore(app_factory, uniq, run_worker) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, _ = flow_app(app_factory, qa, qb)
    strict = await app.enqueue_flow(Flow(name="summarise", payload="s", children=children(4, 1)))
    lenient = await app.enqueue_flow(
        Flow(name="summarise", payload="l", policy="ignore", children=children(4, 4))
    )
    async with run_worker(app):
        with pytest.raises(JobFailed, match=r"1 of 4 children failed \(policy fail\)"):
            await strict.result(timeout=10)
        result = await lenient.result(timeout=10)
    assert (result["completed"], result["failed"]) == (0, 4)


async def test_nested_flows_and_failure_cascade(app_factory, uniq, run_worker) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, _ = flow_app(app_factory, qa, qb)
    tree = Flow(
        name="summarise",
        payload="root",
        id="nest-ok",
        children=[
            Flow(name="summarise", payload="mid", queue=qa, children=children(3)),
            Flow(name="square-b", payload=Work(n=7)),
        ],
    )
    broken = Flow(
        name="summarise",
        payload="root",
        id="nest-bad",
        children=[Flow(name="summarise", payload="mid", children=children(3, failing=1))],
    )
    ok = await app.enqueue_flow(tree)
    bad = await app.enqueue_flow(broken)
    async with run_worker(app):
        result = await ok.result(timeout=10)
        with pytest.raises(JobFailed, match="1 of 1 children failed"):
            await bad.result(timeout=10)
    # The middle node's own result reached the root like any child's.
    assert result == {
        "label": "root",
        "completed": 2,
        "failed": 0,
        "sum": 49,
        "labels": ["mid"],
        "errors": [],
    }
    state = await app.flow_state(qa, "nest-ok")
    assert state is not None and state.jobs == 6 and state.counts == {"completed": 6}


async def test_enqueueing_the_same_flow_twice_adds_nothing(app_factory, uniq) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, _ = flow_app(app_factory, qa, qb)
    flow = Flow(name="summarise", payload="x", id="same", children=children(6))
    first = await app.enqueue_flow(flow)
    again = await app.enqueue_flow(flow)
    assert (first.deduplicated, again.deduplicated) == (False, True)
    stats_a, stats_b = await app.stats(qa), await app.stats(qb)
    assert stats_a.totals["enqueued"] == 1 + 3 and stats_b.totals["enqueued"] == 3
    assert stats_a.waiting == 3  # the parent is on no lane


async def test_invalid_flows_write_nothing(app_factory, uniq) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, _ = flow_app(app_factory, qa, qb)
    bad_child = Flow(name="summarise", payload="x", children=[Flow(name="nope")])
    with pytest.raises(InvalidJob):
        await app.enqueue_flow(bad_child)
    with pytest.raises(InvalidJob, match="threshold"):
        await app.enqueue_flow(
            Flow(name="summarise", payload="x", policy="threshold", children=children(2))
        )
    await app.connect()
    assert await app.redis.exists(_keys.stats(qa), _keys.stats(qb)) == 0


async def test_sweep_settles_children_finished_outside_a_worker(
    app_factory, uniq, run_worker
) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, _ = flow_app(app_factory, qa, qb)
    root = await app.enqueue_flow(
        Flow(name="summarise", payload="s", policy="ignore", children=children(3))
    )
    kids = await app.redis.lrange(_keys.custom(qa, "flow", root.id, "children"), 0, -1)
    # Cancelled while queued: no worker settles it, so no finish hook runs for it.
    first_id, first_queue = kids[0].decode().split(" ")
    assert await app.cancel(first_queue, first_id)
    started = time.monotonic()
    async with run_worker(app):
        result = await root.result(timeout=15)
    assert (result["completed"], result["failed"]) == (2, 1)
    assert time.monotonic() - started < 10


async def test_killing_a_worker_mid_flow_neither_stalls_nor_reruns_the_parent(
    app_factory, uniq, redis_url: str, valkey_url: str
) -> None:
    if redis_url != valkey_url:
        pytest.skip("the multi-process run is on the embedded Valkey only")
    qa, qb = uniq("fa"), uniq("fb")
    app: App = app_factory()

    # The lease is the enqueuer's: short, so the dead worker's children come back quickly.
    @app.task("flow-child", queue=qb, lease=1.0)
    async def flow_child(ctx: Context, n: int) -> int: ...

    @app.task("flow-parent", queue=qa)
    async def flow_parent(ctx: Context, _: None) -> None: ...

    env = {"ORCH_QUEUE": qa, "ORCH_QUEUE_B": qb, "ORCH_LEASE": "1.0", "ORCH_CHILD_SLEEP": "0.3"}
    procs = [
        spawn_worker(
            redis_url, qa, name=f"w{i}", concurrency=8, app="tests.streamq.orch_app:app", env=env
        )
        for i in range(2)
    ]
    try:
        root = await app.enqueue_flow(
            Flow(
                name="flow-parent",
                id="crash-root",
                children=[Flow(name="flow-child", payload=i) for i in range(40)],
            )
        )
        # Kill one worker while children are running (some done, some in its hands).
        deadline = time.monotonic() + 30
        while (await app.stats(qb)).totals.get("completed", 0) < 8:
            assert time.monotonic() < deadline, "children did not start"
            await asyncio.sleep(0.05)
        procs[0].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        result = await root.result(timeout=30)
        # Its children were reclaimed after their 1 s lease and finished elsewhere.
        assert time.monotonic() - killed < 15
        assert result == {"completed": 40, "sum": sum(i * i for i in range(40))}
        runs = await app.redis.hget(_keys.custom(qa, "test-runs"), "crash-root")
        assert runs == b"1"
    finally:
        for proc in procs:
            stop(proc)


async def test_child_outcomes_are_recorded_once(app_factory, uniq) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, _ = flow_app(app_factory, qa, qb)
    root = await app.enqueue_flow(
        Flow(name="summarise", payload="x", policy="ignore", children=children(2))
    )
    kids = [
        m.decode().split(" ")
        for m in await app.redis.lrange(_keys.custom(qa, "flow", root.id, "children"), 0, -1)
    ]
    (a_id, a_queue), (b_id, b_queue) = kids
    # The hook and the sweep may both report a child: the second report changes nothing.
    assert (
        await record_child_outcome(app.broker, qa, root.id, a_id, a_queue, "completed") == "waiting"
    )
    assert await record_child_outcome(app.broker, qa, root.id, a_id, a_queue, "dead") == "waiting"
    assert await record_child_outcome(app.broker, qa, root.id, b_id, b_queue, "dead") == "queued"
    assert await record_child_outcome(app.broker, qa, root.id, b_id, b_queue, "dead") == "decided"
    types = [e.type for e in await app.read_events(qa) if e.job == root.id]
    assert types == ["waiting-children", "queued"]
    failed = await app.redis.smembers(_keys.custom(qa, "flow", root.id, "failed"))
    assert failed == {f"{b_id} {b_queue}".encode()}


async def test_a_wide_flow_keeps_every_child(app_factory, uniq) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, _ = flow_app(app_factory, qa, qb)
    root = await app.enqueue_flow(Flow(name="summarise", payload="w", children=children(2500)))
    assert await app.redis.llen(_keys.custom(qa, "flow", root.id, "children")) == 2500
    state = await app.flow_state(qa, root.id)
    assert state is not None and state.jobs == 2501 and state.finished == 0
    assert state.counts == {"waiting-children": 1, "queued": 2500}


async def test_sweep_covers_a_worker_that_died_between_settle_and_hook(
    app_factory, uniq, run_worker
) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, _ = flow_app(app_factory, qa, qb)
    async with run_worker(app):
        deadline = time.monotonic() + 5
        while on_job_finished not in app.finish_hooks:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        # As if every child's worker died right after writing its outcome: no hook runs.
        app.finish_hooks.clear()
        root = await app.enqueue_flow(Flow(name="summarise", payload="h", children=children(6)))
        started = time.monotonic()
        result = await root.result(timeout=15)
    assert (result["completed"], result["failed"]) == (6, 0)
    # Found by the sweep (parents older than 2 s, every 2 s), not by a hook.
    assert time.monotonic() - started > 1.5


# -- per-child failure rules and failing fast -------------------------------------------------


def rules_app(app_factory: Callable[..., App], qa: str, qb: str) -> tuple[App, list[Any]]:
    """``boom`` fails at once on ``qa``; ``later`` sits on ``qb``, which no worker in these
    tests serves, so a parent decided while ``later`` is still queued was decided before all
    its children finished."""
    app = app_factory()
    seen: list[Any] = []

    @app.task("boom", queue=qa)
    async def boom(ctx: Context, n: int) -> None:
        raise Fatal(f"boom {n}")

    @app.task("fine", queue=qa)
    async def fine(ctx: Context, n: int) -> int:
        return n

    @app.task("later", queue=qb)
    async def later(ctx: Context, n: int) -> int:
        return n

    @app.task("parent", queue=qa)
    async def parent(ctx: Context, label: str) -> list[tuple[str, str]]:
        kids = await ctx.children()
        seen.append(kids)
        return [(c.name, c.state) for c in kids]

    return app, seen


async def states_of(app: App, queue: str, ids: list[str]) -> list[str | None]:
    jobs = [await app.job(queue, i) for i in ids]
    return [j.state if j else None for j in jobs]


@pytest.mark.parametrize("cancel_children", [False, True])
async def test_policy_fail_fails_the_parent_at_the_first_failed_child(
    app_factory, uniq, run_worker, cancel_children: bool
) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, seen = rules_app(app_factory, qa, qb)
    waiting = [uniq("l1"), uniq("l2")]
    root = await app.enqueue_flow(
        Flow(
            name="parent",
            payload="p",
            cancel_children=cancel_children,
            children=[
                Flow(name="boom", payload=1),
                *(Flow(name="later", payload=2, id=i) for i in waiting),
            ],
        )
    )
    async with run_worker(app, queues=[qa], concurrency=4):
        with pytest.raises(JobFailed, match=r"1 of 3 children failed \(policy fail\)"):
            await root.result(timeout=20)
    assert seen == []  # the parent's handler never ran
    expected = "cancelled" if cancel_children else "queued"
    assert await states_of(app, qb, waiting) == [expected, expected]


async def test_each_childs_own_rule_decides_for_it(app_factory, uniq, run_worker) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, _ = rules_app(app_factory, qa, qb)
    ignored = await app.enqueue_flow(
        Flow(
            name="parent",
            payload="ignore",
            children=[
                Flow(name="boom", payload=1, on_failure="ignore"),
                Flow(name="fine", payload=2),
            ],
        )
    )
    removed = await app.enqueue_flow(
        Flow(
            name="parent",
            payload="remove",
            children=[
                Flow(name="boom", payload=1, on_failure="remove"),
                Flow(name="fine", payload=2),
            ],
        )
    )
    continued = await app.enqueue_flow(
        Flow(
            name="parent",
            payload="continue",
            children=[
                Flow(name="boom", payload=1, on_failure="continue_parent"),
                Flow(name="later", payload=2),
            ],
        )
    )
    failed = await app.enqueue_flow(
        Flow(
            name="parent",
            payload="fail",
            policy="ignore",
            children=[
                Flow(name="boom", payload=1, on_failure="fail_parent"),
                Flow(name="later", payload=2),
            ],
        )
    )
    async with run_worker(app, queues=[qa], concurrency=8):
        # policy fail, but the failed child is ignored: the parent runs and sees it dead
        assert sorted(await ignored.result(timeout=20)) == [["boom", "dead"], ["fine", "completed"]]
        # a removed child is gone from the flow: the parent sees only the other one
        assert await removed.result(timeout=20) == [["fine", "completed"]]
        # the parent runs at once, its other child still queued where no worker serves it
        assert sorted(await continued.result(timeout=20)) == [
            ["boom", "dead"],
            ["later", "queued"],
        ]
        with pytest.raises(JobFailed, match=r"failed \(fail_parent\)"):
            await failed.result(timeout=20)
    flow = await app.flow_state(qa, removed.id)
    assert flow is not None and flow.jobs == 2  # the parent and its one remaining child


async def test_threshold_fails_the_parent_once_it_can_no_longer_be_met(
    app_factory, uniq, run_worker
) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, seen = rules_app(app_factory, qa, qb)
    later = uniq("l")
    root = await app.enqueue_flow(
        Flow(
            name="parent",
            payload="t",
            policy="threshold",
            threshold=0.5,
            children=[
                *(Flow(name="boom", payload=i) for i in range(3)),
                Flow(name="later", payload=9, id=later),
            ],
        )
    )
    async with run_worker(app, queues=[qa], concurrency=4):
        with pytest.raises(JobFailed, match=r"threshold 0\.5 needs 2 completed"):
            await root.result(timeout=20)
    assert seen == []
    assert await states_of(app, qb, [later]) == ["queued"]


async def test_a_childs_rule_is_checked_before_anything_is_written(app_factory, uniq) -> None:
    qa, qb = uniq("fa"), uniq("fb")
    app, _ = rules_app(app_factory, qa, qb)
    with pytest.raises(InvalidJob, match="on_failure is a child's rule"):
        await app.enqueue_flow(
            Flow(
                name="parent",
                payload="x",
                on_failure="ignore",
                children=[Flow(name="fine", payload=1)],
            )
        )
    bad = uniq("bad")
    with pytest.raises(InvalidJob, match="on_failure must be"):
        await app.enqueue_flow(
            Flow(
                name="parent",
                payload="x",
                id=bad,
                children=[Flow(name="fine", payload=1, on_failure="skip")],  # type: ignore[arg-type]
            )
        )
    assert await app.job(qa, bad) is None
