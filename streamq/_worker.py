"""The Worker: runs an app's handlers for its queues until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from redis.exceptions import ResponseError

from streamq import _keys
from streamq._connection import broker_errors
from streamq._errors import BrokerUnavailable, ConfigurationError
from streamq._execute import Executor
from streamq._fetch import Slots, fetch_loop
from streamq._flows import start_flow_support
from streamq._isolation import ProcessPool
from streamq._leases import LeaseKeeper, Reclaimer, every
from streamq._roster import DEFAULT_UNKNOWN_GRACE, Load, UnknownJobs, publish, tasks_of, withdraw
from streamq._schedule import start_scheduler
from streamq._scripts import task_limits
from streamq._settle import Settler
from streamq._types import LANES

if TYPE_CHECKING:
    from streamq._context import Application
    from streamq._delivery import Delivery

log = logging.getLogger(__name__)

T = TypeVar("T")


class Worker:
    """Runs the handlers of ``app`` for ``queues`` (default: every queue it has tasks for).

    ``concurrency`` jobs run at once in this process across the queues without a limit of their
    own; ``queue_concurrency`` (default: the app's ``queue_concurrency``, see
    :meth:`streamq.App.set_concurrency`) gives a queue its own limit, entries here overriding
    the app's. ``batch_size`` caps one fetch.
    ``starvation_share`` of fetches start at a lower lane. On SIGTERM/SIGINT (or :meth:`stop`)
    it stops fetching, lets in-flight jobs finish for ``grace`` seconds, then hands the rest
    back for immediate redelivery elsewhere. Leases and the heartbeat are renewed from a thread
    of the worker's own, so a handler that blocks the event loop keeps its lease; a loop blocked
    longer than ``blocked_loop_warning`` seconds is logged with the handler that blocked it.
    A job it has no handler for is handed back for another worker; it is dead-lettered
    ``unknown_job`` only once no live worker of the queue has served that task for
    ``unknown_grace`` seconds (see ``streamq._roster``). Handlers declared
    ``isolation="process"`` run in up to ``processes`` subprocesses (default: the number of
    CPUs, at most the worker's capacity), started with the worker. Raises
    ``ConfigurationError`` for bad options."""

    def __init__(
        self,
        app: Application,
        queues: list[str] | None = None,
        *,
        concurrency: int = 50,
        queue_concurrency: Mapping[str, int] | None = None,
        batch_size: int | None = None,
        grace: float = 30.0,
        starvation_share: float = 0.1,
        renew_interval: float | None = None,
        reclaim_interval: float | None = None,
        heartbeat_ttl: float = 15.0,
        handle_signals: bool = False,
        scheduler: bool | None = None,
        blocked_loop_warning: float = 1.0,
        unknown_grace: float = DEFAULT_UNKNOWN_GRACE,
        processes: int | None = None,
    ) -> None:
        limits = {**app.queue_concurrency, **(queue_concurrency or {})}
        if concurrency < 1 or any(n < 1 for n in limits.values()):
            raise ConfigurationError("concurrency must be >= 1")
        if not 0 <= starvation_share <= 0.5:
            raise ConfigurationError("starvation_share must be between 0 and 0.5")
        if unknown_grace < 0:
            raise ConfigurationError("unknown_grace must be >= 0")
        self.app = app
        self.broker = app.broker
        self.queues = queues or app.registry.queues()
        if not self.queues:
            raise ConfigurationError("no queues to serve: register tasks or name queues")
        self.concurrency = concurrency
        # Per queue served: its own limit, else a share of the common ``concurrency``.
        self.limits = {q: limits[q] for q in self.queues if q in limits}
        shared = Slots(concurrency)
        self.slots_of = {
            q: Slots(self.limits[q]) if q in self.limits else shared for q in self.queues
        }
        # Jobs at once in this process, all queues together.
        self.capacity = capacity = sum(self.limits.values()) + (
            concurrency if len(self.limits) < len(self.queues) else 0
        )
        # A fetch takes at most the free slots of its queue anyway.
        self.batch_size = batch_size or min(max(s.capacity for s in self.slots_of.values()), 200)
        self.grace = grace
        self.guard_every = round(1 / starvation_share) if starvation_share > 0 else 0
        self.min_lease = {
            q: min([t.lease for t in app.registry.tasks.values() if t.queue == q] or [30.0])
            for q in self.queues
        }
        # This worker's task definitions decide lease and max_deliveries of the jobs it runs
        # (the values stored by the producer are the fallback), and timeout (see _execute).
        self.task_limits = {
            q: task_limits(
                {
                    t.name: (t.lease, t.max_deliveries)
                    for t in app.registry.tasks.values()
                    if t.queue == q
                }
            )
            for q in self.queues
        }
        shortest = min(self.min_lease.values())
        self.renew_interval = renew_interval or max(min(shortest / 3, 1.0), 0.05)
        self.reclaim_interval = reclaim_interval or max(min(shortest / 2, 5.0), 0.1)
        self.heartbeat_ttl = heartbeat_ttl
        self.blocked_loop_warning = blocked_loop_warning
        self.handle_signals = handle_signals
        # Recurring jobs: None runs a scheduler when the queues have schedules (see _schedule).
        self.scheduler = scheduler
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.inflight: dict[str, Delivery] = {}
        self.settler = Settler(app.broker, app.finish_hooks)
        self.roster = {q: tasks_of(app.registry, q) for q in self.queues}
        unknown = UnknownJobs(app.broker, self.settler, self.consumer, unknown_grace)
        isolated = {
            t.fn.__module__
            for t in app.registry.tasks.values()
            if t.isolation == "process" and t.queue in self.queues
        }
        self.processes = (
            ProcessPool(processes or min(capacity, os.cpu_count() or 1), sorted(isolated))
            if isolated
            else None
        )
        self._executor = Executor(
            app,
            self.settler,
            anyio.CapacityLimiter(capacity),
            unknown.handle,
            self.processes,
        )
        self._stop = asyncio.Event()
        # Cleared while a suspect job runs: no other job is fetched beside it.
        self.no_suspect = asyncio.Event()
        self.no_suspect.set()
        # Set whenever nothing is in flight (a suspect waits for that).
        self._idle = asyncio.Event()
        self._idle.set()

    def stop(self) -> None:
        """Asks the worker to shut down gracefully (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def wait_idle(self, timeout: float) -> None:
        """Returns once nothing is in flight, or after ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    def start(self, d: Delivery) -> None:
        """Runs one delivery (called by the fetch loop after it took a slot for it)."""
        self.inflight[d.entry_id] = d
        self._idle.clear()
        if d.suspect:
            log.warning(
                "running a job alone: its last worker died while running it",
                extra={"job_id": d.job_id, "queue": d.queue, "deliveries": d.deliveries},
            )
            self.no_suspect.clear()
        d.task = asyncio.create_task(self._run(d))

    async def _run(self, d: Delivery) -> None:
        try:
            await self._executor.run(d)
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug in streamq itself; the lease expiry will redeliver the job
            log.exception("executing job failed", extra={"job_id": d.job_id, "queue": d.queue})
        finally:
            self.inflight.pop(d.entry_id, None)
            if not self.inflight:
                self._idle.set()
            self.slots_of[d.queue].give(1)
            if d.suspect:
                self.no_suspect.set()

    async def _prepare(self) -> None:
        await self.broker.connect()
        pipe = self.broker.redis.pipeline(transaction=False)
        for queue in self.queues:
            await self.broker.register_queue(queue)
            for lane in LANES:
                # Created at 0 so entries added before the first worker are delivered too.
                pipe.xgroup_create(_keys.lane(queue, lane), _keys.GROUP, id="0", mkstream=True)
            # Counted as alive from the start, not only from the first lease renewal.
            pipe.zadd(_keys.workers(queue), {self.consumer: int(time.time() * 1000)})
        with broker_errors("creating consumer groups"):
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, ResponseError) and "BUSYGROUP" not in str(reply):
                raise ConfigurationError(f"cannot create consumer group: {reply}")
        with broker_errors("publishing the worker's tasks"):
            await self._publish_tasks()

    async def _publish_tasks(self) -> None:
        """Says which tasks this worker serves, per queue, for as long as its heartbeat."""
        ttl_ms = int(self.heartbeat_ttl * 1000)
        for queue in self.queues:
            load = Load.of(queue, self.capacity, self.inflight)
            await publish(self.broker, queue, self.consumer, self.roster[queue], ttl_ms, load)

    async def _until_redis_answers(self, what: str, action: Callable[[], Awaitable[T]]) -> T | None:
        """Runs ``action`` until Redis lets it through (as the loops do after start-up): a worker
        started while Redis is down waits for it, with backoff and one log line per change of
        state, instead of exiting. None if the worker is stopped first."""
        delay, waiting = 0.1, False
        while not self.stopping:
            try:
                result = await action()
            except BrokerUnavailable as exc:
                if not waiting:
                    log.warning("%s: Redis unavailable, waiting for it (%s)", what, exc)
                    waiting = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                delay = min(delay * 2, 2.0)
                continue
            if waiting:
                log.warning("%s: Redis is back", what)
            return result
        return None

    async def run(self) -> None:
        """Serves until :meth:`stop` (or a signal, with ``handle_signals``); then drains."""
        loop = asyncio.get_running_loop()
        if self.handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        try:
            await self._serve()
        finally:
            if self.handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    async def _serve(self) -> None:
        await self._until_redis_answers("starting the worker", self._prepare)
        if self.stopping:
            return
        log.info(
            "worker %s serving %s with concurrency %d%s",
            self.consumer,
            ", ".join(self.queues),
            self.concurrency,
            "".join(f", {q} {n}" for q, n in self.limits.items()),
        )
        if self.processes is not None:
            self.processes.warm()
        # Leases and the heartbeat are renewed from a thread, so a blocked loop keeps them.
        keeper = LeaseKeeper(
            self.broker,
            self.queues,
            self.consumer,
            self.inflight,
            interval=self.renew_interval,
            heartbeat_ms=int(self.heartbeat_ttl * 1000),
            blocked_after=self.blocked_loop_warning,
        )
        keeper.start()
        background = [
            asyncio.create_task(self.settler.run(), name="settle"),
            asyncio.create_task(keeper.tick(), name="loop-tick"),
            asyncio.create_task(every(self.heartbeat_ttl / 3, self._publish_tasks, "roster")),
        ]
        for queue in self.queues:
            reclaimer = Reclaimer(self.broker, self.consumer, queue, self.min_lease[queue])
            background.append(
                asyncio.create_task(every(self.reclaim_interval, reclaimer.run_once, "reclaim"))
            )
        # Flow parents hear of their children's outcomes; recurring jobs get their ticks.
        background += start_flow_support(self.broker, self.app.finish_hooks, self.queues)
        background += (
            await self._until_redis_answers(
                "starting the scheduler",
                functools.partial(start_scheduler, self.app, self.queues, self.scheduler),
            )
            or []
        )
        fetchers = [
            asyncio.create_task(fetch_loop(self, q), name=f"fetch:{q}") for q in self.queues
        ]
        try:
            await self._stop.wait()
        finally:
            self._stop.set()
            for slots in self.slots_of.values():
                slots.wake()
            self.no_suspect.set()
            _, late = await asyncio.wait(fetchers, timeout=5)
            for task in late:
                task.cancel()
            await self._drain()
            for task in background:
                task.cancel()
            await asyncio.wait(background, timeout=5)
            await keeper.stop()
            if self.processes is not None:
                await self.processes.close()
            await self._leave()
            log.info("worker %s stopped", self.consumer)

    async def _drain(self) -> None:
        running = [d.task for d in self.inflight.values() if d.task]
        if running:
            log.info("waiting up to %.0f s for %d running jobs", self.grace, len(running))
            await asyncio.wait(running, timeout=self.grace)
        for d in list(self.inflight.values()):
            if d.task and not d.task.done():
                d.stop_reason = "shutdown"
                d.task.cancel()
        rest = [d.task for d in self.inflight.values() if d.task]
        if rest:
            await asyncio.wait(rest)
        for d in list(self.inflight.values()):
            # Cancelled before it ever ran, so it could not hand itself back.
            self.inflight.pop(d.entry_id, None)
            if not d.settling:
                self.settler.add(d, "hand_back")
        try:
            await asyncio.wait_for(self.settler.drain(), timeout=max(self.grace, 5.0))
        except TimeoutError:
            log.warning("could not write every outcome before stopping; leases will expire")

    async def _leave(self) -> None:
        with contextlib.suppress(Exception):
            pipe = self.broker.redis.pipeline(transaction=False)
            for queue in self.queues:
                pipe.zrem(_keys.workers(queue), self.consumer)
            await pipe.execute()
            for queue in self.queues:
                await withdraw(self.broker, queue, self.consumer)


async def run_worker(app: Application, **options: Any) -> None:
    """Runs a worker for ``app`` until SIGTERM/SIGINT (what ``streamq worker`` calls)."""
    worker = Worker(app, handle_signals=True, **options)
    try:
        await worker.run()
    finally:
        await app.close()
