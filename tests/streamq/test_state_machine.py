"""A state-machine property test of the broker's Lua scripts against a real server: enqueue
(new and duplicate ids), fetch, complete, fail, crash, reclaim and cancel in any order.

Invariants after every step: each acknowledged job is in exactly one state, and where it sits
in Redis agrees with that state; no job completes twice; no job is delivered more than
max_deliveries times; an outcome from a delivery whose lease was taken never applies."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from streamq import App, EnqueueRequest, _keys
from streamq._enqueue import _prepare
from streamq._scripts import new_job_args, source
from streamq._types import LANES

MAX_DELIVERIES = 3
IDS = [f"j{i}" for i in range(6)]


def make_machine(url: str) -> type[RuleBasedStateMachine]:
    class BrokerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.r = redis.Redis.from_url(url)
            self.queue = f"sm-{time.time_ns()}"
            self.app = App("sm", redis_url=url)

            @self.app.task(
                "t", queue=self.queue, lease=0.001, max_deliveries=MAX_DELIVERIES, max_attempts=2
            )
            def t(ctx: Any, x: int) -> int:
                return x

            self.scripts = {
                v: self.r.register_script(source(n))
                for v, n in [
                    ("enqueue", "enqueue-3"),
                    ("fetch", "fetch-4"),
                    ("settle", "settle-2"),
                    ("reclaim", "reclaim-3"),
                    ("cancel", "cancel-3"),
                ]
            }
            self.head = [_keys.prefix(self.queue), _keys.GROUP, 100_000]
            self.acknowledged: set[str] = set()
            self.held: dict[str, list[tuple[Any, ...]]] = {"A": [], "B": []}

        def teardown(self) -> None:
            keys = list(self.r.scan_iter(match=f"sq:{{{self.queue}}}:*"))
            if keys:
                self.r.delete(*keys)
            self.r.close()

        def job(self, job_id: str) -> dict[bytes, bytes]:
            return self.r.hgetall(_keys.job(self.queue, job_id))

        @rule(job=st.sampled_from(IDS), delay=st.sampled_from([0, 0, 0, 50]))
        def enqueue(self, job: str, delay: int) -> None:
            _, new = _prepare(
                self.app.registry,
                self.app.result_ttl,
                EnqueueRequest(name="t", payload=1, id=job, delay=delay / 1000),
                time.time(),
            )
            args = new_job_args(new)
            q = self.queue
            [(_state, dup)] = self.scripts["enqueue"](
                keys=[_keys.events(q), _keys.stats(q), _keys.delayed(q)], args=self.head + args
            )
            assert bool(dup) == (job in self.acknowledged)  # dedup: one job per id
            self.acknowledged.add(job)

        @rule(consumer=st.sampled_from(["A", "B"]))
        def fetch(self, consumer: str) -> None:
            q = self.queue
            time.sleep(0.002)  # let due delayed jobs become due sometimes
            _, jobs, _, _, _ = self.scripts["fetch"](
                keys=[_keys.events(q), _keys.stats(q), _keys.delayed(q), _keys.paused(q)],
                args=[
                    *self.head,
                    consumer,
                    2,
                    100,
                    "1" if not self.held[consumer] else "0",
                    "{}",
                    *LANES,
                ],
            )
            for entry, lane, job_id, _spec, _attempt, fence, deliveries, _lost in jobs:
                assert int(deliveries) <= MAX_DELIVERIES
                self.held[consumer].append(
                    (job_id.decode(), lane.decode(), entry.decode(), int(fence))
                )

        def _settle(self, consumer: str, index: int, outcome: str, number: int, text: str) -> None:
            if not self.held[consumer]:
                return
            job_id, lane, entry, fence = self.held[consumer].pop(index % len(self.held[consumer]))
            before = self.job(job_id)
            valid = (
                before.get(b"state") == b"active"
                and int(before[b"fence"]) == fence
                and before.get(b"entry", b"").decode() == entry
            )
            q = self.queue
            [applied] = self.scripts["settle"](
                keys=[_keys.events(q), _keys.stats(q)],
                args=[
                    *self.head,
                    100_000,
                    0,
                    outcome,
                    job_id,
                    lane,
                    entry,
                    fence,
                    "x",
                    number,
                    text,
                ],
            )
            assert bool(applied) == valid

        @rule(consumer=st.sampled_from(["A", "B"]), index=st.integers(0, 3))
        def complete(self, consumer: str, index: int) -> None:
            self._settle(consumer, index, "c", 60_000, "")

        @rule(consumer=st.sampled_from(["A", "B"]), index=st.integers(0, 3), dead=st.booleans())
        def fail(self, consumer: str, index: int, dead: bool) -> None:
            if dead:
                self._settle(consumer, index, "d", 60_000, "max_attempts")
            else:
                self._settle(consumer, index, "r", 0, "1")

        @rule(consumer=st.sampled_from(["A", "B"]))
        def crash(self, consumer: str) -> None:
            self.held[consumer] = []  # gone without a word: its entries stay pending

        @rule()
        def reclaim(self) -> None:
            time.sleep(0.002)  # past the 1 ms lease
            q = self.queue
            args: list[Any] = [*self.head, "R", 0, 100, 100_000, 60_000, 0]
            for lane in LANES:
                args += [lane, "0-0"]
            self.scripts["reclaim"](
                keys=[_keys.events(q), _keys.stats(q), _keys.dead(q)], args=args
            )

        @rule(job=st.sampled_from(IDS))
        def cancel(self, job: str) -> None:
            q = self.queue
            self.scripts["cancel"](
                keys=[_keys.events(q), _keys.stats(q), _keys.delayed(q)],
                args=[*self.head, job, 60_000, 0],
            )

        @invariant()
        def every_job_is_in_exactly_one_consistent_state(self) -> None:
            q = self.queue
            # One round trip for the whole picture: the invariant runs after every step, and
            # dozens of separate reads per step made the test crawl on a busy machine.
            ids = sorted(self.acknowledged)
            pipe = self.r.pipeline(transaction=True)
            pipe.zrange(_keys.delayed(q), 0, -1)
            # Suspects in quarantine: queued, their entry still pending (see fetch-4).
            pipe.zrange(_keys.custom(q, "suspects"), 0, -1)
            for lane in LANES:
                pipe.xrange(_keys.lane(q, lane))
                pipe.xpending_range(_keys.lane(q, lane), _keys.GROUP, "-", "+", 10_000)
            pipe.xrange(_keys.dead(q))
            for job_id in ids:
                pipe.hgetall(_keys.job(q, job_id))
            # A lane no job has reached has no consumer group yet: XPENDING answers NOGROUP.
            replies = pipe.execute(raise_on_error=False)
            delayed = {m.decode() for m in replies[0]}
            suspects = {m.decode() for m in replies[1]}
            in_lane: Counter[str] = Counter()
            pending: set[str] = set()
            for n in range(len(LANES)):
                entries, pel = replies[2 + 2 * n], replies[3 + 2 * n]
                if isinstance(pel, redis.ResponseError):
                    assert "NOGROUP" in str(pel) and not entries, pel
                    pel = []
                pending_entries = {p["message_id"] for p in pel}
                for entry, fields in entries:
                    in_lane[fields[b"id"].decode()] += 1
                    if entry in pending_entries:
                        pending.add(fields[b"id"].decode())
            dead_at = 2 + 2 * len(LANES)
            dead_entries = Counter(f[b"id"].decode() for _, f in replies[dead_at])
            for job_id, h in zip(ids, replies[dead_at + 1 :], strict=True):
                state = h[b"state"].decode()
                assert int(h[b"deliveries"]) <= MAX_DELIVERIES
                if state == "queued":
                    assert in_lane[job_id] == 1 and (job_id in pending) == (job_id in suspects)
                    assert job_id not in delayed
                elif state == "active":
                    assert in_lane[job_id] == 1 and job_id in pending
                elif state in ("scheduled", "retrying"):
                    assert job_id in delayed and in_lane[job_id] == 0
                else:
                    assert state in ("completed", "dead", "cancelled"), state
                    assert in_lane[job_id] == 0 and job_id not in delayed
                assert dead_entries[job_id] == (1 if state == "dead" else 0)
                assert job_id not in suspects or state == "queued"

        @invariant()
        def nothing_completes_twice(self) -> None:
            completed: Counter[str] = Counter()
            for _, f in self.r.xrange(_keys.events(self.queue)):
                if f[b"t"] == b"completed":
                    completed[f[b"j"].decode()] += 1
            assert all(n == 1 for n in completed.values()), completed

    return BrokerMachine


def test_broker_state_machine(redis_url: str) -> None:
    machine = make_machine(redis_url)
    machine.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    machine.TestCase().runTest()
