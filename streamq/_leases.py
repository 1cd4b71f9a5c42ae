"""Leases: renewing this worker's deliveries, and reclaiming other workers' expired ones."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from streamq import _keys
from streamq._metrics import JOBS_RECLAIMED
from streamq._types import LANES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from streamq._broker import Broker
    from streamq._delivery import Delivery

log = logging.getLogger(__name__)

# Consumers with nothing pending and idle this long are removed from the groups: they belong to
# workers that are gone (a live worker reads its lanes every fraction of a second, and one
# removed by mistake is recreated by its next read). Checked at most this often:
_PRUNE_IDLE_MS = 3_600_000
_PRUNE_EVERY = 60.0


async def renew_leases(
    broker: Broker,
    queue: str,
    consumer: str,
    inflight_by_entry: Mapping[str, Delivery],
    heartbeat_ms: int,
) -> None:
    """Extends the leases of a worker's deliveries on ``queue`` (and its heartbeat); cancels
    the handlers of jobs whose lease was lost or whose cancel was requested."""
    inflight = [d for d in inflight_by_entry.values() if d.queue == queue]
    renewed = await broker.scripts.renew(
        queue, consumer=consumer, heartbeat_ms=heartbeat_ms, leases=[d.lease for d in inflight]
    )
    by_id = {d.job_id: d for d in inflight}
    for job_id, reason in [(i, "lost") for i in renewed.lost] + [
        (i, "cancel") for i in renewed.cancel_requested
    ]:
        found = by_id.get(job_id)
        if found is None or found.settling or found.task is None or found.stop_reason:
            continue
        log.info(
            "stopping handler: %s",
            "lease lost" if reason == "lost" else "cancel requested",
            extra={"job_id": found.job_id, "queue": queue, "attempt": found.attempt},
        )
        found.stop_reason = reason
        found.task.cancel()


class Reclaimer:
    """Pages through a queue's pending entries with XAUTOCLAIM, keeping a cursor per lane."""

    def __init__(self, broker: Broker, consumer: str, queue: str, min_lease: float) -> None:
        self.broker = broker
        self.consumer = consumer
        self.queue = queue
        self.min_idle_ms = max(int(min_lease * 1000), 1)
        self.cursors = dict.fromkeys(LANES, "0-0")
        self.prune_idle_ms = _PRUNE_IDLE_MS
        self._pruned_at = time.monotonic()

    async def run_once(self) -> int:
        queue = self.queue
        reply = await self.broker.scripts.reclaim(
            queue,
            consumer=self.consumer,
            min_idle_ms=self.min_idle_ms,
            count=200,
            cursors=self.cursors,
        )
        self.cursors = reply.cursors
        requeued, dead, cancelled = reply.requeued, reply.dead, reply.cancelled
        if time.monotonic() - self._pruned_at > _PRUNE_EVERY:
            self._pruned_at = time.monotonic()
            await self.prune_consumers()
        if requeued or dead or cancelled:
            JOBS_RECLAIMED.labels(queue).inc(requeued + dead + cancelled)
            log.warning(
                "reclaimed expired leases on %s: %d requeued, %d dead, %d cancelled",
                queue,
                requeued,
                dead,
                cancelled,
            )
        return requeued + dead + cancelled

    async def prune_consumers(self) -> int:
        """Deletes the consumers of departed workers from the queue's lane groups (so restarts
        do not pile up consumers); returns how many were removed."""
        redis, removed = self.broker.redis, 0
        for lane in LANES:
            key = _keys.lane(self.queue, lane)
            try:
                consumers = await redis.xinfo_consumers(key, _keys.GROUP)
            except ResponseError:  # no such stream or group yet
                continue
            for consumer in consumers:
                if consumer["pending"] == 0 and consumer["idle"] > self.prune_idle_ms:
                    await redis.xgroup_delconsumer(key, _keys.GROUP, consumer["name"])
                    removed += 1
        if removed:
            log.info("removed %d departed consumers from the groups of %s", removed, self.queue)
        return removed


async def every(interval: float, action: Callable[[], Awaitable[Any]], what: str) -> None:
    """Runs ``action()`` every ``interval`` seconds (jittered), surviving Redis outages."""
    while True:
        await asyncio.sleep(interval * (0.8 + 0.4 * random.random()))
        try:
            await action()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed: %s", what, exc)
