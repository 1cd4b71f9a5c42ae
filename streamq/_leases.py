"""Leases: renewing this worker's deliveries, and reclaiming other workers' expired ones."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from streamq import _keys
from streamq._connection import make_client
from streamq._metrics import JOBS_RECLAIMED
from streamq._scripts import Scripts
from streamq._types import LANES

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._delivery import Delivery

log = logging.getLogger(__name__)

# Consumers with nothing pending and idle this long are removed from the groups: they belong to
# workers that are gone (a live worker reads its lanes every fraction of a second, and one
# removed by mistake is recreated by its next read). Checked at most this often:
_PRUNE_IDLE_MS = 3_600_000
_PRUNE_EVERY = 60.0


async def renew_leases(
    scripts: Scripts,
    queue: str,
    consumer: str,
    inflight: list[Delivery],
    heartbeat_ms: int,
) -> list[tuple[Delivery, str]]:
    """Extends the leases of a worker's deliveries on ``queue`` (and its heartbeat); returns
    the deliveries whose handlers must stop, with why: ``"lost"`` or ``"cancel"``."""
    mine = [d for d in inflight if d.queue == queue]
    renewed = await scripts.renew(
        queue, consumer=consumer, heartbeat_ms=heartbeat_ms, leases=[d.lease for d in mine]
    )
    by_id = {d.job_id: d for d in mine}
    return [
        (by_id[job_id], reason)
        for job_id, reason in [(i, "lost") for i in renewed.lost]
        + [(i, "cancel") for i in renewed.cancel_requested]
        if job_id in by_id
    ]


def stop_handler(d: Delivery, reason: str) -> None:
    """Cancels the handler of ``d`` (lease lost, or cancel requested); on the event loop."""
    if d.settling or d.task is None or d.stop_reason:
        return
    log.info(
        "stopping handler: %s",
        "lease lost" if reason == "lost" else "cancel requested",
        extra={"job_id": d.job_id, "queue": d.queue, "attempt": d.attempt},
    )
    d.stop_reason = reason
    d.task.cancel()


class LeaseKeeper:
    """Renews a worker's leases and heartbeat from a thread of its own, over a connection of its
    own, so a handler that blocks the event loop (a sync call in async code) cannot lose them;
    it also notices such a block and names the handler that caused it.

    The event loop only stamps a tick now and then (:meth:`tick`); the thread reads the
    worker's in-flight deliveries (a copy of the dict, taken atomically) and hands the handlers
    to stop back to the loop with ``call_soon_threadsafe``."""

    def __init__(
        self,
        broker: Broker,
        queues: list[str],
        consumer: str,
        inflight: dict[str, Delivery],
        *,
        interval: float,
        heartbeat_ms: int,
        blocked_after: float,
    ) -> None:
        self._url = broker.url or ""
        self._retention = broker.retention
        self._queues = queues
        self._consumer = consumer
        self._inflight = inflight
        self._interval = interval
        self._heartbeat_ms = heartbeat_ms
        self._blocked_after = blocked_after
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticked = time.monotonic()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._ticked = time.monotonic()
        self._thread = threading.Thread(target=self._main, name="streamq-leases", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)

    async def tick(self) -> None:
        """Runs on the event loop: proof that it is not blocked."""
        step = min(self._blocked_after / 4, 0.1)
        while True:
            self._ticked = time.monotonic()
            await asyncio.sleep(step)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        client = make_client(self._url, max_connections=2)
        scripts = Scripts(client, self._retention)
        failing = False
        blocked: tuple[str, str] | None = None
        next_renewal = 0.0
        try:
            while not self._halt.is_set():
                now = time.monotonic()
                blocked = self._watch_loop(now, blocked)
                if now >= next_renewal:
                    next_renewal = now + self._interval * (0.8 + 0.4 * random.random())
                    try:
                        await self._renew(scripts)
                    except Exception as exc:
                        if not failing:
                            log.warning("renewing leases failed (will keep trying): %s", exc)
                        failing = True
                    else:
                        if failing:
                            log.warning("renewing leases works again")
                        failing = False
                await asyncio.sleep(min(self._interval / 4, 0.05))
        finally:
            await client.aclose()

    async def _renew(self, scripts: Scripts) -> None:
        inflight = list(self._inflight.copy().values())
        for queue in self._queues:
            to_stop = await renew_leases(
                scripts, queue, self._consumer, inflight, self._heartbeat_ms
            )
            for d, reason in to_stop:
                assert self._loop is not None
                self._loop.call_soon_threadsafe(stop_handler, d, reason)

    def _watch_loop(self, now: float, blocked: tuple[str, str] | None) -> tuple[str, str] | None:
        """Logs a loop blocked longer than ``blocked_after`` once, with the handler that blocks
        it, and once more when it runs again; returns what is blocking it (None when nothing)."""
        lag = now - self._ticked
        if lag <= self._blocked_after:
            if blocked is not None:
                log.warning(
                    "the event loop runs again: handler %s blocked it (job %s)",
                    *blocked,
                    extra={"job_id": blocked[1]},
                )
            return None
        if blocked is not None:
            return blocked
        assert self._loop is not None
        current = asyncio.current_task(self._loop)
        culprit = next(
            (d for d in self._inflight.copy().values() if d.task is current and current), None
        )
        name, job = (culprit.spec.name, culprit.job_id) if culprit else ("(not a handler)", "")
        log.warning(
            "the event loop has been blocked for %.1f s by handler %s (job %s): leases are kept "
            "by the lease thread, but nothing else runs; use await or a plain (threaded) "
            "function for blocking calls",
            lag,
            name,
            job,
            extra={"job_id": job, "handler": name, "blocked_seconds": round(lag, 1)},
        )
        return (name, job)


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
