"""The App: the public facade over a Broker (Redis client, scripts, retention settings) and a
task registry, with the producer and operator API. Nothing inside streamq imports this module
but ``streamq/__init__.py``: internal modules take the Broker, or the ``Application`` protocol."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

from streamq import _admin
from streamq._broker import Broker
from streamq._enqueue import EnqueueRequest
from streamq._errors import ConfigurationError
from streamq._forward import Forward, WritableForward
from streamq._handle import JobHandle, Waiters, waiters_of
from streamq._scripts import Retention, Scripts
from streamq._tags import check_index_fields, declare_index, enqueue_tagged
from streamq._task import Isolation, ReservedIds, TaskDef, TaskRegistry
from streamq._types import Backoff, DeadLetter, Event, Job, QueueStats

if TYPE_CHECKING:
    from streamq._delivery import FinishHook
    from streamq._dropqueue import QueueDeletion
    from streamq._flows import Flow, FlowState
    from streamq._index import JobPage
    from streamq._joblog import JobLog
    from streamq._jobs import Outcome
    from streamq._middleware import Middleware, Phase
    from streamq._schedule import Schedule
    from streamq._scripts import JobAction
    from streamq._sync import SyncJobHandle

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_BACKOFF = Backoff()


class JobFilters(TypedDict, total=False):
    """Which jobs :meth:`App.jobs`, :meth:`App.list_jobs` and :meth:`App.operate_matching` take
    (None matches anything): a ``state``, a job ``name``, a ``lane``, a ``tag``, and
    ``since``/``until`` (epoch seconds) bounding the last state change, or the creation when
    filtering by name alone or by tag."""

    state: str | None
    name: str | None
    lane: str | None
    since: float | None
    until: float | None
    tag: str | None


class App:
    """A streamq application: tasks registered with :meth:`task`, jobs enqueued with
    :meth:`enqueue`, run by :class:`streamq.Worker`.

    Redis is ``redis_url``, else ``$STREAMQ_REDIS_URL``, else an embedded Valkey for the current
    directory (started on first use, shared by every streamq process started there).
    ``concurrency`` caps how many jobs of a queue one worker runs at once, per queue (e.g.
    ``{"balances": 50, "analysis": 10}``; see :meth:`set_concurrency`); queues not named share
    the worker's ``concurrency``.
    Raises ``ConfigurationError`` for a bad URL; Redis failures surface as ``BrokerUnavailable``.
    """

    def __init__(
        self,
        name: str = "streamq",
        *,
        redis_url: str | None = None,
        result_ttl: float = 3600.0,
        dead_ttl: float = 7 * 86400.0,
        keep_last: int = 0,
        events_maxlen: int = 10_000,
        dead_maxlen: int = 100_000,
        embedded_dir: Path | str | None = None,
        concurrency: Mapping[str, int] | None = None,
    ) -> None:
        self.name = name
        self.broker = Broker(
            url=redis_url,
            retention=Retention(
                result_ttl=result_ttl,
                dead_ttl=dead_ttl,
                keep_last=keep_last,
                events_maxlen=events_maxlen,
                dead_maxlen=dead_maxlen,
            ),
            embedded_dir=embedded_dir,
        )
        self.registry = TaskRegistry()
        self.tasks: dict[str, TaskDef] = self.registry.tasks
        # Called as ``await hook(broker, delivery, outcome)`` after a worker's final outcome for
        # a delivery is written: "completed", "dead" or "cancelled".
        self.finish_hooks: list[FinishHook] = []
        # Jobs at once per queue in one worker (what Worker applies unless told otherwise).
        self.queue_concurrency: dict[str, int] = {}
        for queue, limit in (concurrency or {}).items():
            self.set_concurrency(queue, limit)

    def set_concurrency(self, queue: str, limit: int) -> None:
        """At most ``limit`` jobs of ``queue`` run at once in one worker of this app (``streamq
        worker --concurrency queue=N`` overrides it). Raises ``ConfigurationError`` for a bad
        queue name or a limit below 1."""
        from streamq._keys import validate_queue

        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ConfigurationError(f"concurrency of {queue!r} must be an integer >= 1")
        try:
            self.queue_concurrency[validate_queue(queue)] = limit
        except Exception as exc:
            raise ConfigurationError(str(exc)) from None

    # -- settings and connection (held by the broker) ---------------------------------------------

    result_ttl = WritableForward[float]("broker.retention.result_ttl")
    dead_ttl = WritableForward[float]("broker.retention.dead_ttl")
    keep_last = WritableForward[int]("broker.retention.keep_last")
    events_maxlen = WritableForward[int]("broker.retention.events_maxlen")
    dead_maxlen = WritableForward[int]("broker.retention.dead_maxlen")

    @property
    def redis(self) -> Any:
        """The redis.asyncio client (after the first awaited call, or :meth:`connect`).

        ``Any`` at the facade on purpose: callers outside the broker read replies as bytes
        (``decode_responses=False``); inside, ``Broker.redis`` is the typed client."""
        return self.broker.redis

    scripts = Forward[Scripts]("broker.scripts")
    url = Forward[str | None]("broker.url")

    def use_redis_url(self, url: str) -> None:
        """Points the app at ``url`` instead of the Redis it was built with (what a command
        line's ``--redis-url`` does to a loaded app). Raises ``ConfigurationError`` once the app
        is connected: its clients already talk to the other server."""
        if self.broker.connected:
            raise ConfigurationError(
                f"the app is already connected to {self.broker.url}; "
                "set its Redis URL before first use"
            )
        self.broker.url = url

    @property
    def waiters(self) -> Waiters:
        return waiters_of(self.broker)

    async def connect(self) -> App:
        """Connects (starting the embedded server if needed); safe to call many times."""
        await self.broker.connect()
        return self

    async def close(self) -> None:
        """Closes connections; stops the embedded server if this process started it."""
        await self.waiters.close()
        await self.broker.close()

    async def __aenter__(self) -> App:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def ping(self) -> bool:
        """True if Redis answers; never raises."""
        return await self.broker.ping()

    async def register_queue(self, queue: str) -> None:
        """Adds ``queue`` to the registry (once per process)."""
        await self.broker.register_queue(queue)

    # -- tasks -----------------------------------------------------------------------------------

    def task(
        self,
        name: str,
        *,
        queue: str = "default",
        priority: str | int = "normal",
        timeout: float | None = None,
        max_attempts: int = 1,
        backoff: Backoff | float = DEFAULT_BACKOFF,
        lease: float = 30.0,
        max_deliveries: int = 5,
        result_ttl: float | None = None,
        public: bool = False,
        reserved_ids: ReservedIds | None = None,
        isolation: Isolation = "thread",
        index: Sequence[str] = (),
    ) -> Callable[[F], F]:
        """Registers the decorated function as the handler of jobs named ``name``.

        The handler takes ``(ctx, payload)``; the payload's annotation (a msgspec Struct or any
        msgspec-supported type) is what enqueue validates against. Plain functions run in a
        thread, which cannot be stopped; ``isolation="process"`` runs the handler (async or
        plain) in a subprocess of the worker that is killed on timeout, cancel or shutdown: use
        it for CPU-bound or blocking code.

        ``public=True`` lets clients of the server's generic job API enqueue the task (off by
        default: the application's own code and endpoints start it). ``reserved_ids`` is the
        id space the application derives for the task's jobs (a prefix such as ``"bal:"``, a
        tuple of prefixes, or a function of the id returning True for a reserved one): the
        generic API refuses such ids, so nobody plants a job where the application dedups.
        ``index`` names payload fields each job is tagged by (``index=["wallet"]`` tags a job
        ``wallet:<its wallet>``), to list them with ``app.jobs(queue, tag=...)``.

        Raises ``ConfigurationError`` for a duplicate name or bad options."""

        def register(fn: F) -> F:
            if name in self.tasks:
                raise ConfigurationError(f"task {name!r} is already registered")
            check_index_fields(name, index)
            task = TaskDef(
                name,
                fn,
                queue=queue,
                priority=priority,
                timeout=timeout,
                max_attempts=max_attempts,
                backoff=backoff,
                lease=lease,
                max_deliveries=max_deliveries,
                result_ttl=result_ttl,
                public=public,
                reserved_ids=reserved_ids,
                isolation=isolation,
            )
            self.registry.add(task)
            declare_index(self.registry, name, index)
            return fn

        return register

    def middleware(self, fn: Middleware | None = None, *, on: Phase = "both") -> Any:
        """Registers ``async def mw(call, call_next)`` to run around every enqueue
        (``call.kind == "enqueue"``) and every handler run (``"process"``), or only one of them
        with ``on=``; the first registered is the outermost. Usable as ``@app.middleware`` or
        ``app.middleware(fn)``; returns ``fn``. Raises ``ConfigurationError``."""
        from streamq._middleware import register

        def add(fn: Middleware) -> Middleware:
            register(self.broker, fn, on)
            return fn

        return add if fn is None else add(fn)

    def task_def(self, queue: str | None, name: str) -> TaskDef:
        """The task ``name`` (on ``queue`` if given); raises ``UnknownJob`` naming the known ones."""
        return self.registry.task_def(queue, name)

    def queues_of_tasks(self) -> list[str]:
        return self.registry.queues()

    # -- producing -------------------------------------------------------------------------------

    async def enqueue(
        self,
        name: str,
        payload: Any = None,
        *,
        id: str | None = None,
        queue: str | None = None,
        priority: str | int | None = None,
        delay: float | None = None,
        run_at: float | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        dedup_ttl: float | None = None,
        parent: tuple[str, str] | None = None,
        durable: bool = False,
        tags: Sequence[str] = (),
    ) -> JobHandle:
        """Enqueues one job; returns its handle (``deduplicated`` if the id already existed).
        ``tags`` (1-200 characters without whitespace, at most 20) are what
        ``app.jobs(queue, tag=...)`` finds it by, with those of the task's ``index`` fields.

        Raises ``UnknownJob``, ``InvalidPayload``, ``InvalidJobId``, ``InvalidJob`` (a bad
        tag; nothing written), ``QueueFull`` or ``BrokerUnavailable``."""
        request = EnqueueRequest(
            name=name,
            payload=payload,
            id=id,
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            max_attempts=max_attempts,
            timeout=timeout,
            request_id=request_id,
            dedup_ttl=dedup_ttl,
            parent=parent,
        )
        [handle] = await enqueue_tagged(
            self.broker, self.registry, [request], durable=durable, given=[tags]
        )
        return handle

    async def enqueue_many(
        self, requests: list[EnqueueRequest], *, durable: bool = False
    ) -> list[JobHandle]:
        """Enqueues many jobs with one script call per queue (per 1,000 jobs); validates all
        of them before writing any. Jobs of tasks with ``index`` fields are tagged by them."""
        return await enqueue_tagged(self.broker, self.registry, requests, durable=durable)

    def enqueue_sync(self, name: str, payload: Any = None, **options: Any) -> SyncJobHandle:
        """:meth:`enqueue` for code without an event loop (a Django or Flask view, a script),
        safe from any number of threads; returns a handle whose ``result(timeout)``,
        ``state()`` and ``cancel()`` block. Raises what :meth:`enqueue` raises, and
        ``SyncInEventLoop`` if called inside a running event loop."""
        from streamq._sync import sync_runner

        durable = bool(options.pop("durable", False))
        request = EnqueueRequest(name=name, payload=payload, **options)
        return sync_runner(self.broker, self.registry).enqueue_many([request], durable)[0]

    def enqueue_many_sync(
        self, requests: list[EnqueueRequest], *, durable: bool = False
    ) -> list[SyncJobHandle]:
        """:meth:`enqueue_many` for code without an event loop (see :meth:`enqueue_sync`)."""
        from streamq._sync import sync_runner

        return sync_runner(self.broker, self.registry).enqueue_many(requests, durable)

    def close_sync(self) -> None:
        """Closes the connections of the sync calls and stops their background thread (also
        done at interpreter exit)."""
        from streamq._sync import close_sync

        close_sync(self.broker)

    def handle(self, queue: str, id: str) -> JobHandle:
        return JobHandle(self.broker, queue, id)

    # -- reading and operating -------------------------------------------------------------------

    async def job(self, queue: str, id: str) -> Job | None:
        return await _admin.read_job(self.broker, queue, id)

    def jobs(
        self, queue: str, *, page_size: int = 100, **filters: Unpack[JobFilters]
    ) -> AsyncIterator[Job]:
        """The jobs of ``queue`` matching the filters, newest first (by last state change, or
        by creation when listing by ``name`` alone), read page by page from the queue's index.
        Raises ``InvalidJob`` for an unknown state or lane, ``BrokerUnavailable``."""
        from streamq._index import JobQuery, iter_jobs

        return iter_jobs(self.broker, queue, JobQuery(**filters).check(), page_size=page_size)

    async def list_jobs(
        self,
        queue: str | list[str],
        *,
        limit: int = 50,
        cursor: str | None = None,
        **filters: Unpack[JobFilters],
    ) -> JobPage:
        """One page of :meth:`jobs` (of one queue, or merged over a list of queues):
        ``page.jobs`` and ``page.next``, the cursor to pass for the next page (None at the
        end). Raises ``InvalidJob`` (filters, limit 1-500, a
        cursor not from a previous page), ``BrokerUnavailable``."""
        from streamq._index import JobQuery, list_jobs

        query = JobQuery(**filters)
        return await list_jobs(self.broker, queue, query, limit=limit, cursor=cursor)

    async def find_job(self, id: str, queues: list[str] | None = None) -> Job | None:
        """The job ``id`` in any queue (default: every registered queue); None if none holds
        it. Raises ``InvalidJobId``, ``BrokerUnavailable``."""
        from streamq._ids import validate_job_id
        from streamq._index import find_job

        validate_job_id(id)
        names = queues if queues is not None else await self.queue_names()
        return await find_job(self.broker, names, id)

    async def retry(self, queue: str, id: str) -> None:
        """Puts a dead, cancelled or completed job back on its lane with fresh attempts.
        Raises ``JobNotFound``, ``JobStateConflict``, ``BrokerUnavailable``."""
        from streamq._jobs import act_on_one

        await act_on_one(self.broker, queue, "retry", id)

    async def promote(self, queue: str, id: str) -> None:
        """Runs a scheduled (delayed) or retrying job now. Raises ``JobNotFound``,
        ``JobStateConflict``, ``BrokerUnavailable``."""
        from streamq._jobs import act_on_one

        await act_on_one(self.broker, queue, "promote", id)

    async def remove(self, queue: str, id: str) -> None:
        """Deletes a finished job's record (and its index entry). Raises ``JobNotFound``,
        ``JobStateConflict``, ``BrokerUnavailable``."""
        from streamq._jobs import act_on_one

        await act_on_one(self.broker, queue, "remove", id)

    async def operate(self, queue: str, action: JobAction, ids: list[str]) -> Outcome:
        """``action`` ("retry", "promote", "remove") on many jobs, in batches; the outcome
        counts those done and lists the ids refused (with their state) or missing."""
        from streamq._jobs import act

        return await act(self.broker, queue, action, ids)

    async def operate_matching(
        self,
        queue: str,
        action: JobAction,
        *,
        cursor: str | None = None,
        max_jobs: int | None = None,
        **filters: Unpack[JobFilters],
    ) -> Outcome:
        """``action`` on every job the filters (as :meth:`jobs`) match, in bounded batches;
        with ``max_jobs``, stops after about that many and ``outcome.next`` is the cursor to
        resume from. Raises ``InvalidJob`` (filters), ``BrokerUnavailable``."""
        from streamq._index import JobQuery
        from streamq._jobs import act_matching

        query = JobQuery(**filters).check()
        return await act_matching(
            self.broker, queue, action, query, cursor=cursor, max_jobs=max_jobs
        )

    async def drain(self, queue: str) -> int:
        """Removes every waiting job (queued, scheduled, retrying) of ``queue``; active ones
        run on. Returns how many were removed."""
        done = 0
        for state in ("queued", "scheduled", "retrying"):
            done += (await self.operate_matching(queue, "drain", state=state)).done
        return done

    async def clean(self, queue: str, older_than: float, state: str | None = None) -> int:
        """Removes finished jobs (``state``: one of completed, dead, cancelled; default all
        three) that finished more than ``older_than`` seconds ago. Returns how many."""
        import time

        from streamq._errors import InvalidJob

        states = [state] if state is not None else ["completed", "dead", "cancelled"]
        if any(s not in ("completed", "dead", "cancelled") for s in states):
            raise InvalidJob(
                f"clean removes finished jobs: completed, dead or cancelled, not {state}"
            )
        until = max(time.time() - older_than, 0.0)
        done = 0
        for s in states:
            done += (await self.operate_matching(queue, "remove", state=s, until=until)).done
        return done

    async def set_priority(self, queue: str, id: str, priority: str | int) -> bool:
        """Moves a waiting (queued, scheduled or retrying) job to the lane of ``priority`` (a
        lane name or 1-10); a queued one goes to the back of its new lane. False if it was in
        that lane already. Raises ``InvalidJob`` (priority), ``JobNotFound``,
        ``JobStateConflict`` (an active or finished job), ``BrokerUnavailable``."""
        from streamq._priority import set_priority

        return await set_priority(self.broker, queue, id, priority)

    async def delete_queue(
        self, queue: str, *, force: bool = False, max_batches: int | None = None
    ) -> QueueDeletion:
        """Deletes ``queue`` entirely: its jobs (records, logs), lanes, delayed and dead jobs,
        index, events, schedules, rate limit and registry entry, in batches of a few ms of
        Redis each. Refused while live workers serve it unless ``force`` (which pauses it
        first). With ``max_batches`` it stops early (``done`` False) and a later call resumes.
        Raises ``QueueInUse``, ``BrokerUnavailable``."""
        from streamq._dropqueue import delete_queue

        return await delete_queue(self.broker, queue, force=force, max_batches=max_batches)

    async def job_logs(self, queue: str, id: str) -> JobLog | None:
        """The log a job's handler wrote with ``ctx.log`` (oldest line first, with how many
        older lines were dropped); None when there is no such job. Raises ``InvalidJobId``,
        ``BrokerUnavailable``."""
        from streamq._joblog import read

        return await read(self.broker, queue, id)

    async def cancel(self, queue: str, id: str) -> bool:
        """Cancels a job; True if it was (or is being) cancelled by this call."""
        return await _admin.cancel(self.broker, queue, id)

    async def pause(self, queue: str) -> None:
        await _admin.set_paused(self.broker, queue, True)

    async def resume(self, queue: str) -> None:
        await _admin.set_paused(self.broker, queue, False)

    async def queue_names(self) -> list[str]:
        return await _admin.queue_names(self.broker)

    async def stats(self, queue: str) -> QueueStats:
        return await _admin.stats(self.broker, queue)

    async def dead_letters(
        self, queue: str, count: int = 100, after: str = "-"
    ) -> list[DeadLetter]:
        return await _admin.dead_letters(self.broker, queue, count, after)

    async def replay_dead(self, queue: str, ids: list[str] | None = None) -> int:
        return await _admin.replay_dead(self.broker, queue, ids)

    async def purge_dead(self, queue: str, ids: list[str] | None = None) -> int:
        return await _admin.purge_dead(self.broker, queue, ids)

    async def read_events(
        self, queue: str, after: str = "0-0", count: int = 100, block_ms: int | None = None
    ) -> list[Event]:
        """Events after entry id ``after`` (``"$"``: only new ones), waiting up to ``block_ms``."""
        return await _admin.read_events(self.broker, queue, after, count, block_ms)

    def events(self, queue: str, after: str = "$", job: str | None = None) -> AsyncIterator[Event]:
        """Follows a queue's events live (optionally one job's)."""
        return _admin.follow_events(self.broker, queue, after, job)

    async def record_audit(
        self,
        queue: str,
        *,
        action: str,
        caller: str,
        status: int,
        outcome: str,
        jobs: list[str] | None = None,
    ) -> str:
        """Appends an ``audit`` event to ``queue``'s events stream: ``name`` the action,
        ``message`` the caller's name (never a secret), status, outcome and job ids. It names
        no job, so a job's followers do not see it. Returns the entry id; raises
        ``InvalidQueueName`` or ``BrokerUnavailable``."""
        from streamq._audit import audit_message, record_audit

        message = audit_message(caller, status, outcome, list(jobs or []))
        return await record_audit(self.broker, queue, action, message)

    # -- orchestration (flows, recurring jobs, rate limits) ---------------------------------------

    async def rate_limit(self, queue: str, limit: int | None, per: float = 1.0) -> None:
        """Limits ``queue`` to ``limit`` job starts per ``per`` seconds across all workers
        (stored in Redis; ``limit=None`` removes it). Raises ``ConfigurationError``."""
        from streamq._ratelimit import set_rate_limit

        await set_rate_limit(self.broker, queue, limit, per)

    async def enqueue_flow(self, flow: Flow) -> JobHandle:
        """Enqueues a parent job that waits (state ``waiting-children``) until its children,
        in any queues, are finished; returns the root's handle. Validates the whole tree before
        writing anything: raises ``InvalidJob`` (and subclasses) or ``BrokerUnavailable``."""
        from streamq._flows import enqueue_flow

        return await enqueue_flow(self.broker, self.registry, flow)

    async def flow_state(self, queue: str, root_id: str) -> FlowState | None:
        """The state and progress of the flow rooted at ``root_id`` (None if unknown)."""
        from streamq._flows import flow_state

        return await flow_state(self.broker, queue, root_id)

    def schedule(self, name: str, payload: Any = None, **options: Any) -> Schedule:
        """Registers a recurring job in code: ``cron=`` (with ``tz=``) or ``every=`` seconds;
        ``overlap=False`` skips a tick while the previous run is unfinished; ``id=``,
        ``queue=``, ``priority=``, ``catch_up=`` (missed ticks fired after downtime, default 1).
        Run by :class:`streamq.Scheduler` (workers start one). Raises ``ConfigurationError``."""
        from streamq._schedule import make_schedule, register

        return register(self.registry, make_schedule(self.registry, name, payload, **options))

    async def add_schedule(self, name: str, payload: Any = None, **options: Any) -> Schedule:
        """Stores a recurring job in Redis (options as :meth:`schedule`), for every scheduler."""
        from streamq._schedule import add_schedule, make_schedule

        await self.connect()
        return await add_schedule(
            self.broker, make_schedule(self.registry, name, payload, **options)
        )

    async def schedules(self, queue: str | None = None) -> list[Schedule]:
        """Recurring jobs, in code and stored, of ``queue`` (default: all of the app's)."""
        from streamq._schedule import list_schedules

        return await list_schedules(self.broker, self.registry, queue)

    async def remove_schedule(self, queue: str, schedule_id: str) -> bool:
        """Removes a stored recurring job; True if it existed."""
        from streamq._schedule import remove_schedule

        return await remove_schedule(self.broker, queue, schedule_id)
