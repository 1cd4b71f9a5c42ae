"""Flows: a parent job that runs once its children (in any queues) are finished.

The parent's record is written first, in state ``waiting-children`` and on no lane, with the
flow's bookkeeping under the parent's queue tag; then the children are enqueued carrying
``parent=(id, queue)``. Children may live in other queues, hence other cluster slots, so no
script spans both: when a child finishes, a worker's finish hook runs an idempotent script on
the parent's queue (a set of finished children) that, once all are accounted for, queues or
dead-letters the parent by its policy. Children that finish outside a worker's settlement
(reclaimed to dead, cancelled while queued) or whose worker died before its hook are picked up
by a periodic sweep run by workers of the parent's queue, which applies the same script.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Literal, cast

import msgspec

from streamq import _keys
from streamq._codec import decode_any
from streamq._connection import as_text, broker_errors
from streamq._enqueue import EnqueueRequest, _prepare, enqueue_batch
from streamq._errors import InvalidJob
from streamq._handle import JobHandle
from streamq._ids import job_id, random_job_id
from streamq._leases import every
from streamq._scripts import ChildDecision, FinalOutcome, NewJob, split_member
from streamq._types import TERMINAL_STATES

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._delivery import Delivery, FinishHook
    from streamq._task import TaskRegistry

log = logging.getLogger(__name__)

Policy = Literal["fail", "ignore", "threshold"]
SWEEP_INTERVAL = 2.0
# Parents younger than this are left to the hooks (their children may still be being written).
_SWEEP_MIN_AGE_MS = 2_000
# A child with no record at all counts as failed only once its parent is this old: before that
# the producer may still be writing the flow.
_MISSING_AFTER_MS = 30_000
_SWEEP_BATCH = 100
_OUTCOME: dict[str, FinalOutcome] = {
    "completed": "completed",
    "dead": "dead",
    "cancelled": "cancelled",
}


class Flow(msgspec.Struct, frozen=True, kw_only=True):
    """A job and the children it waits for (each a Flow, so flows nest).

    ``policy``: ``"fail"`` dead-letters the parent if any child fails (is dead or cancelled),
    ``"ignore"`` runs it regardless, ``"threshold"`` runs it if at least ``threshold`` (0..1) of
    its children completed. Children without an ``id`` get one derived from the parent's id and
    their position, so enqueueing the same flow (same root id) again adds nothing."""

    name: str
    payload: Any = None
    id: str | None = None
    queue: str | None = None
    priority: str | int | None = None
    policy: Policy = "fail"
    threshold: float | None = None
    children: list[Flow] = []
    max_attempts: int | None = None
    timeout: float | None = None
    request_id: str | None = None


class ChildResult(msgspec.Struct, frozen=True, kw_only=True):
    """One child as its parent sees it (``state`` is ``"missing"`` if its record expired)."""

    id: str
    queue: str
    name: str
    state: str
    result: Any = None
    error: str | None = None


class FlowState(msgspec.Struct, frozen=True, kw_only=True):
    """A whole flow read from its root: the root's state and every job's in the tree."""

    id: str
    queue: str
    state: str
    jobs: int
    finished: int
    counts: dict[str, int]
    progress: float
    error: str | None = None


_split = split_member
flow_key = _keys.flow
waiting_key = _keys.flows_waiting


# -- writing a flow -------------------------------------------------------------------------------


class _Node(msgspec.Struct, kw_only=True):
    flow: Flow
    queue: str
    id: str
    job: NewJob
    children: list[_Node]


def _request(
    flow: Flow, id: str, queue: str | None, parent: tuple[str, str] | None
) -> EnqueueRequest:
    """What enqueues the job of one node of ``flow`` (not its children) as ``id`` on ``queue``."""
    return EnqueueRequest(
        name=flow.name,
        payload=flow.payload,
        id=id,
        queue=queue,
        priority=flow.priority,
        max_attempts=flow.max_attempts,
        timeout=flow.timeout,
        request_id=flow.request_id,
        parent=parent,
    )


def _plan(
    registry: TaskRegistry,
    result_ttl: float,
    flow: Flow,
    node_id: str,
    parent: tuple[str, str] | None,
    now: float,
) -> _Node:
    """Validates the whole tree (nothing is written if any node is bad) and fixes every id."""
    if flow.policy not in ("fail", "ignore", "threshold"):
        raise InvalidJob(f"flow policy must be fail, ignore or threshold, not {flow.policy!r}")
    if flow.policy == "threshold" and (flow.threshold is None or not 0 <= flow.threshold <= 1):
        raise InvalidJob("policy 'threshold' needs threshold between 0 and 1")
    queue, job = _prepare(registry, result_ttl, _request(flow, node_id, flow.queue, parent), now)
    jid = job.id
    children = [
        _plan(
            registry, result_ttl, child, child.id or job_id("flow", jid, index), (jid, queue), now
        )
        for index, child in enumerate(flow.children)
    ]
    ids = [(c.id, c.queue) for c in children]
    if len(set(ids)) != len(ids):
        raise InvalidJob(f"flow {jid} has the same child twice")
    return _Node(flow=flow, queue=queue, id=jid, job=job, children=children)


async def _write_parent(broker: Broker, node: _Node, parent_queue: str) -> tuple[str, bool]:
    await broker.register_queue(node.queue)
    threshold = node.flow.threshold if node.flow.threshold is not None else 1.0
    with broker_errors(f"writing flow {node.id}"):
        reply = await broker.scripts.flow(
            node.queue,
            node.job,
            policy=node.flow.policy,
            threshold=threshold,
            parent_queue=parent_queue,
            children=[(c.id, c.queue) for c in node.children],
        )
    return reply.state, reply.deduplicated


async def _write(
    broker: Broker, registry: TaskRegistry, node: _Node, parent_queue: str
) -> JobHandle:
    state, dup = await _write_parent(broker, node, parent_queue)
    leaves = [c for c in node.children if not c.children]
    if leaves:
        requests = [_request(c.flow, c.id, c.queue, (node.id, node.queue)) for c in leaves]
        await enqueue_batch(broker, registry, requests)
    for child in node.children:
        if child.children:
            await _write(broker, registry, child, node.queue)
    return JobHandle(
        broker, node.queue, node.id, name=node.flow.name, deduplicated=dup, state_at_enqueue=state
    )


async def enqueue_flow(broker: Broker, registry: TaskRegistry, flow: Flow) -> JobHandle:
    now = time.time()
    root = _plan(registry, broker.retention.result_ttl, flow, flow.id or random_job_id(), None, now)
    await broker.connect()
    if not root.children:
        # A flow without children is a plain job.
        return (await enqueue_batch(broker, registry, [_request(flow, root.id, root.queue, None)]))[
            0
        ]
    return await _write(broker, registry, root, "")


# -- children finishing ---------------------------------------------------------------------------


async def record_child_outcome(
    broker: Broker,
    parent_queue: str,
    parent: str,
    child: str,
    child_queue: str,
    outcome: FinalOutcome,
) -> ChildDecision:
    """Tells the parent that a child finished (idempotent); when that decides the parent dead
    and it is itself a child, its own parent is told in turn. Returns the parent's decision."""
    while True:
        with broker_errors(f"recording a child of flow {parent}"):
            done = await broker.scripts.childdone(parent_queue, parent, child, child_queue, outcome)
        if done.decision == "dead":
            log.warning(
                "flow parent dead: its children failed",
                extra={"job_id": parent, "queue": parent_queue},
            )
            if done.grandparent and done.grandparent_queue:
                child, child_queue = parent, parent_queue
                parent, parent_queue, outcome = done.grandparent, done.grandparent_queue, "dead"
                continue
        return done.decision


async def on_job_finished(broker: Broker, delivery: Delivery, outcome: FinalOutcome) -> None:
    """The worker's finish hook: a child's final outcome reaches its parent."""
    spec = delivery.spec
    if not spec.parent or not spec.parent_queue:
        return
    await record_child_outcome(
        broker, spec.parent_queue, spec.parent, delivery.job_id, delivery.queue, outcome
    )


async def sweep(broker: Broker, queue: str) -> int:
    """Re-checks the children of parents waiting on ``queue`` and records any finished ones the
    hooks missed; returns how many child outcomes it recorded."""
    now_ms = int(time.time() * 1000)
    with broker_errors(f"sweeping flows of {queue}"):
        waiting = await broker.redis.zrangebyscore(
            waiting_key(queue),
            "-inf",
            now_ms - _SWEEP_MIN_AGE_MS,
            start=0,
            num=_SWEEP_BATCH,
            withscores=True,
        )
    recorded = 0
    for raw_parent, created in cast("list[tuple[bytes, float]]", waiting):
        parent = as_text(raw_parent)
        pipe = broker.redis.pipeline(transaction=False)
        pipe.hget(_keys.job(queue, parent), "state")
        pipe.lrange(flow_key(queue, parent, "children"), 0, -1)
        pipe.smembers(flow_key(queue, parent, "done"))
        with broker_errors(f"sweeping flow {parent}"):
            state, members, done = await pipe.execute()
        if state != b"waiting-children":
            # Decided, cancelled or expired: nothing left to wait for.
            await broker.redis.zrem(waiting_key(queue), parent)
            continue
        pending = [m for m in members if m not in done]
        if not pending:
            continue
        pipe = broker.redis.pipeline(transaction=False)
        for member in pending:
            child, child_queue = _split(member)
            pipe.hget(_keys.job(child_queue, child), "state")
        with broker_errors(f"sweeping flow {parent}"):
            states = await pipe.execute()
        for member, child_state in zip(pending, states, strict=True):
            child, child_queue = _split(member)
            if child_state is None:
                if now_ms - created < _MISSING_AFTER_MS:
                    continue
                outcome: FinalOutcome = "dead"
            else:
                found = _OUTCOME.get(child_state.decode())
                if found is None:
                    continue
                outcome = found
            await record_child_outcome(broker, queue, parent, child, child_queue, outcome)
            recorded += 1
    if recorded:
        log.info("flow sweep on %s recorded %d finished children", queue, recorded)
    return recorded


def start_flow_support(
    broker: Broker, hooks: list[FinishHook], queues: list[str]
) -> list[asyncio.Task[None]]:
    """Installs the finish hook in the application's ``hooks`` and starts a sweep per served
    queue."""
    if on_job_finished not in hooks:
        hooks.append(on_job_finished)
    return [
        asyncio.create_task(
            every(
                SWEEP_INTERVAL, functools.partial(sweep, broker, queue), f"flow sweep of {queue}"
            ),
            name=f"flows:{queue}",
        )
        for queue in queues
    ]


# -- reading --------------------------------------------------------------------------------------


async def children_of(broker: Broker, queue: str, parent: str) -> list[ChildResult]:
    """The children of flow parent ``parent`` on ``queue``, in the order they were given."""
    await broker.connect()
    with broker_errors(f"reading children of {parent}"):
        members = await broker.redis.lrange(flow_key(queue, parent, "children"), 0, -1)
        pipe = broker.redis.pipeline(transaction=False)
        for member in members:
            child, child_queue = _split(member)
            pipe.hmget(_keys.job(child_queue, child), "state", "name", "result", "error")
        rows = await pipe.execute() if members else []
    out = []
    for member, (state, name, result, error) in zip(members, rows, strict=True):
        child, child_queue = _split(member)
        out.append(
            ChildResult(
                id=child,
                queue=child_queue,
                name=name.decode() if name else "",
                state=state.decode() if state else "missing",
                result=decode_any(result) if state == b"completed" else None,
                error=error.decode() if error and state != b"completed" else None,
            )
        )
    return out


async def flow_state(broker: Broker, queue: str, root: str) -> FlowState | None:
    """The state of the flow rooted at ``root``: counts of every job's state in the tree and
    the share finished. None if there is no record of the root."""
    await broker.connect()
    with broker_errors(f"reading flow {root}"):
        head = await broker.redis.hmget(_keys.job(queue, root), "state", "error")
    if head[0] is None:
        return None
    root_state = as_text(head[0])
    counts: dict[str, int] = defaultdict(int)
    counts[root_state] += 1
    level = [(root, queue)]
    while level:
        pipe = broker.redis.pipeline(transaction=False)
        for parent, parent_queue in level:
            pipe.lrange(flow_key(parent_queue, parent, "children"), 0, -1)
        with broker_errors(f"reading flow {root}"):
            lists = await pipe.execute()
        children = [_split(m) for members in lists for m in members]
        if not children:
            break
        pipe = broker.redis.pipeline(transaction=False)
        for child, child_queue in children:
            pipe.hget(_keys.job(child_queue, child), "state")
        with broker_errors(f"reading flow {root}"):
            states = await pipe.execute()
        for state in states:
            counts[as_text(state) if state else "missing"] += 1
        level = children
    jobs = sum(counts.values())
    finished = sum(n for s, n in counts.items() if s in TERMINAL_STATES)
    return FlowState(
        id=root,
        queue=queue,
        state=root_state,
        jobs=jobs,
        finished=finished,
        counts=dict(counts),
        progress=finished / jobs,
        error=as_text(head[1]) if head[1] else None,
    )
