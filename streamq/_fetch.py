"""The fetch loop of one queue: deliver as many jobs as there are free slots, highest lane
first; when there is nothing, block on the lanes until something arrives or a delayed job is
due."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Protocol

from streamq import _keys
from streamq._codec import decode_spec
from streamq._delivery import Delivery
from streamq._ratelimit import StartLimiter
from streamq._scripts import FetchReply, new_token
from streamq._types import LANES

if TYPE_CHECKING:
    from redis.typing import KeyT, StreamIdT

    from streamq._broker import Broker

log = logging.getLogger(__name__)

_IDLE_WAIT_MS = 250
_PROMOTE_LIMIT = 500


class Slots:
    """Free capacity: a queue's own limit, or the worker's ``concurrency`` shared by the fetch
    loops of the queues without one."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.free = capacity
        self._freed = asyncio.Event()

    async def take(self, most: int) -> int:
        while self.free <= 0:
            self._freed.clear()
            await self._freed.wait()
        if self.free <= 0:
            return 0
        n = min(most, self.free)
        self.free -= n
        return n

    def give(self, n: int = 1) -> None:
        if n > 0:
            self.free += n
            self._freed.set()

    def wake(self) -> None:
        """Wakes loops waiting for a slot (so they can notice a stop)."""
        self._freed.set()


def lane_order(fetch_number: int, guard_every: int) -> list[str]:
    """Highest lane first; every ``guard_every``-th fetch starts at a lower lane in turn, so a
    flood of high-lane work cannot starve the others."""
    if guard_every <= 0 or fetch_number % guard_every:
        return list(LANES)
    turn = (fetch_number // guard_every) % (len(LANES) - 1) + 1
    return [LANES[turn], *(lane for lane in LANES if lane != LANES[turn])]


class Fetching(Protocol):
    """What the fetch loop uses of its worker (:class:`streamq.Worker`)."""

    broker: Broker
    consumer: str
    batch_size: int
    guard_every: int
    slots_of: dict[str, Slots]
    no_suspect: asyncio.Event
    task_limits: dict[str, str]
    inflight: dict[str, Delivery]

    @property
    def stopping(self) -> bool: ...

    def start(self, d: Delivery) -> None: ...

    async def wait_idle(self, timeout: float) -> None: ...


async def fetch_loop(worker: Fetching, queue: str) -> None:
    broker = worker.broker
    lane_keys = {lane: _keys.lane(queue, lane) for lane in LANES}
    limiter = StartLimiter(broker, queue)
    fetches = 0
    # The loop ends on worker.stopping rather than by cancellation: a blocked read in redis-py
    # does not always yield to cancellation, and every wait here is short anyway.
    while not worker.stopping:
        await worker.no_suspect.wait()
        n = await worker.slots_of[queue].take(worker.batch_size)
        if worker.stopping:
            worker.slots_of[queue].give(n)
            return
        if n == 0:
            continue
        # A rate-limited queue admits fewer starts (or none for now, after a wait).
        n = await limiter.admit(worker.slots_of[queue].give, n)
        if n == 0:
            continue
        fetches += 1
        order = lane_order(fetches, worker.guard_every)
        reply = await _fetch_once(worker, queue, n, order)
        if reply is None:  # stopping
            worker.slots_of[queue].give(n)
            return
        jobs = reply.jobs
        worker.slots_of[queue].give(n - len(jobs))
        for job in jobs:
            worker.start(
                Delivery(
                    queue=queue,
                    lane=job.lane,
                    entry_id=job.entry_id,
                    job_id=job.job_id,
                    spec=decode_spec(job.spec),
                    attempt=job.attempt,
                    fence=job.fence,
                    deliveries=job.deliveries,
                    suspect=job.lost > 0,
                )
            )
        await limiter.refund(n - len(jobs))
        if jobs:
            continue
        if reply.suspects_waiting:
            # A suspect waits for a worker with nothing in flight, and this one gets no new job
            # meanwhile: ask again when its jobs are done (or soon, in case another took it).
            # (At once if they finished while this fetch was under way.)
            await worker.wait_idle(_IDLE_WAIT_MS / 1000)
            continue
        wait_ms = _IDLE_WAIT_MS
        if reply.next_due_ms >= 0:
            wait_ms = max(min(wait_ms, int(reply.next_due_ms - time.time() * 1000)), 1)
        if reply.paused:
            await asyncio.sleep(wait_ms / 1000)
            continue
        streams: dict[KeyT, StreamIdT] = {
            lane_keys[lane]: last for lane, last in zip(order, reply.last_ids, strict=True)
        }
        limiter.recheck()
        try:
            await broker.redis.xread(streams, count=1, block=wait_ms)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("waiting on %s failed: %s", queue, exc)
            await asyncio.sleep(0.05)


async def _fetch_once(worker: Fetching, queue: str, n: int, order: list[str]) -> FetchReply | None:
    """One fetch, tried again with the same token until it answers: a try whose reply was lost
    after it had assigned jobs answers the next try with those jobs, so none is marked active
    without its worker knowing. None when the worker stops first (the jobs of a lost reply are
    then reclaimed when their lease expires)."""
    token = new_token()
    may_take_suspect = not worker.inflight
    backoff = 0.05
    while True:
        try:
            return await worker.broker.scripts.fetch(
                queue,
                consumer=worker.consumer,
                count=n,
                promote_limit=_PROMOTE_LIMIT,
                may_take_suspect=may_take_suspect,
                lanes=order,
                task_limits=worker.task_limits[queue],
                token=token,
            )
        except asyncio.CancelledError:
            worker.slots_of[queue].give(n)
            raise
        except Exception as exc:
            if worker.stopping:
                return None
            log.warning("fetching from %s failed (retrying in %.2f s): %s", queue, backoff, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
