"""The fetch loop of one queue: deliver as many jobs as there are free slots, highest lane
first; when there is nothing, block on the lanes until something arrives or a delayed job is
due."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from streamq import _keys
from streamq._codec import decode_spec
from streamq._context import Delivery
from streamq._ratelimit import StartLimiter
from streamq._types import LANES

if TYPE_CHECKING:
    from streamq._worker import Worker

log = logging.getLogger(__name__)

_IDLE_WAIT_MS = 250
_PROMOTE_LIMIT = 500


class Slots:
    """The worker's free capacity, shared by the fetch loops of all its queues."""

    def __init__(self, capacity: int) -> None:
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


async def fetch_loop(worker: Worker, queue: str) -> None:
    app = worker.app
    keys = [_keys.events(queue), _keys.stats(queue), _keys.delayed(queue), _keys.paused(queue)]
    head: list[Any] = [_keys.prefix(queue), _keys.GROUP, app.events_maxlen, worker.consumer]
    lane_keys = {lane: _keys.lane(queue, lane) for lane in LANES}
    limiter = StartLimiter(app, queue)
    fetches = 0
    backoff = 0.05
    # The loop ends on worker.stopping rather than by cancellation: a blocked read in redis-py
    # does not always yield to cancellation, and every wait here is short anyway.
    while not worker.stopping:
        await worker.no_suspect.wait()
        n = await worker.slots.take(worker.batch_size)
        if worker.stopping:
            worker.slots.give(n)
            return
        if n == 0:
            continue
        # A rate-limited queue admits fewer starts (or none for now, after a wait).
        n = await limiter.admit(worker.slots, n)
        if n == 0:
            continue
        fetches += 1
        order = lane_order(fetches, worker.guard_every)
        try:
            paused, jobs, next_due, last_ids = await app.scripts.call(
                "fetch", keys, [*head, n, _PROMOTE_LIMIT, "0" if worker.inflight else "1", *order]
            )
        except asyncio.CancelledError:
            worker.slots.give(n)
            raise
        except Exception as exc:
            worker.slots.give(n)
            log.warning("fetching from %s failed (retrying in %.2f s): %s", queue, backoff, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
            continue
        backoff = 0.05
        worker.slots.give(n - len(jobs))
        for entry_id, lane, job_id, spec, attempt, fence, deliveries, lost in jobs:
            worker.start(
                Delivery(
                    queue=queue,
                    lane=lane.decode(),
                    entry_id=entry_id.decode(),
                    job_id=job_id.decode(),
                    spec=decode_spec(spec),
                    attempt=int(attempt),
                    fence=int(fence),
                    deliveries=int(deliveries),
                    suspect=int(lost) > 0,
                )
            )
        await limiter.refund(n - len(jobs))
        if jobs:
            continue
        wait_ms = _IDLE_WAIT_MS
        if next_due >= 0:
            wait_ms = max(min(wait_ms, int(next_due - time.time() * 1000)), 1)
        if paused:
            await asyncio.sleep(wait_ms / 1000)
            continue
        streams = {lane_keys[lane]: last for lane, last in zip(order, last_ids, strict=True)}
        try:
            await app.redis.xread(streams, count=1, block=wait_ms)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("waiting on %s failed: %s", queue, exc)
            await asyncio.sleep(backoff)
