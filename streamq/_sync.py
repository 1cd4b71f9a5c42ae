"""The sync facade: enqueue and wait from code with no event loop (Django and Flask views,
scripts, notebooks, threaded handlers).

Each App gets one background thread running one event loop, started on first use and shared by
every calling thread; a call submits a coroutine to it and blocks on the answer. The loop has
its own Broker (same server, same retention, same middlewares), because a redis.asyncio client
belongs to the loop that made it and the App's own broker may be in use on another loop (a
worker's) in the same process.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, TypeVar

from streamq._broker import Broker
from streamq._enqueue import EnqueueRequest
from streamq._errors import SyncInEventLoop
from streamq._forward import Forward
from streamq._middleware import share_middlewares
from streamq._tags import enqueue_tagged

if TYPE_CHECKING:
    from streamq._handle import JobHandle
    from streamq._task import TaskRegistry
    from streamq._types import Job

T = TypeVar("T")

# A blocked caller waits this much longer than the operation's own timeout, so the operation
# reports its TimeoutError itself rather than the caller giving up first.
_GRACE = 5.0


class SyncRunner:
    """One background event loop thread for one App's blocking calls."""

    def __init__(self, broker: Broker, registry: TaskRegistry) -> None:
        self.broker = Broker(
            url=broker.url,
            retention=broker.retention,
            # The same embedded server directory as the app's (private: set in Broker only).
            embedded_dir=getattr(broker, "_embedded_dir", None),
        )
        share_middlewares(broker, self.broker)
        self.registry = registry
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="streamq-sync", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Runs ``coro`` on the background loop and returns its result (or raises what it
        raised). Raises ``SyncInEventLoop`` if this thread runs an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise SyncInEventLoop(
                "a blocking streamq call was made inside a running event loop, which it would "
                "stall; use the async API there (await app.enqueue(...), await job.result())"
            )
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())
        try:
            return future.result(None if timeout is None else timeout + _GRACE)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError(f"no answer from the streamq loop within {timeout} s") from None

    def close(self) -> None:
        """Closes the connections and stops the loop thread; a later call starts them again."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None or not thread.is_alive():
            return
        closing = asyncio.run_coroutine_threadsafe(_close(self.broker), loop)
        try:
            closing.result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    def enqueue_many(self, requests: list[EnqueueRequest], durable: bool) -> list[SyncJobHandle]:
        handles = self.run(enqueue_tagged(self.broker, self.registry, requests, durable=durable))
        return [SyncJobHandle(self, handle) for handle in handles]


async def _close(broker: Broker) -> None:
    from streamq._handle import waiters_of

    await waiters_of(broker).close()
    await broker.close()


class SyncJobHandle:
    """A job handle for sync code: the same reads and waits as :class:`streamq.JobHandle`,
    blocking. Every method raises ``SyncInEventLoop`` when called inside a running loop."""

    def __init__(self, runner: SyncRunner, handle: JobHandle) -> None:
        self._runner = runner
        self.handle = handle
        """The async handle (for use on the App's loop it belongs to, the sync one)."""

    id = Forward[str]("handle.id")
    queue = Forward[str]("handle.queue")
    name = Forward[str | None]("handle.name")
    deduplicated = Forward[bool]("handle.deduplicated")

    def __repr__(self) -> str:
        return f"SyncJobHandle({self.queue!r}, {self.id!r}, deduplicated={self.deduplicated})"

    def result(self, timeout: float | None = 30.0) -> Any:
        """Waits for the job to finish and returns its result. Raises ``JobFailed``,
        ``JobCancelled``, ``JobNotFound``, or ``TimeoutError`` after ``timeout`` seconds."""
        return self._runner.run(self.handle.result(timeout), timeout)

    def wait(self, timeout: float | None = 30.0) -> Job:
        """Waits for the job to finish, whatever the outcome; returns its record."""
        return self._runner.run(self.handle.wait(timeout), timeout)

    def state(self) -> str | None:
        """The job's state, or None if there is no record of it."""
        return self._runner.run(self.handle.state())

    def info(self) -> Job | None:
        return self._runner.run(self.handle.info())

    def cancel(self) -> bool:
        """Cancels the job; True if this call cancelled it."""
        return self._runner.run(self.handle.cancel())


_runners: weakref.WeakKeyDictionary[Broker, SyncRunner] = weakref.WeakKeyDictionary()
_runners_lock = threading.Lock()


def sync_runner(broker: Broker, registry: TaskRegistry) -> SyncRunner:
    """The sync runner of the app whose broker is ``broker`` (made on first use)."""
    with _runners_lock:
        runner = _runners.get(broker)
        if runner is None:
            runner = _runners[broker] = SyncRunner(broker, registry)
        return runner


def close_sync(broker: Broker) -> None:
    with _runners_lock:
        runner = _runners.pop(broker, None)
    if runner is not None:
        runner.close()


@atexit.register
def _close_all() -> None:
    # Lets the background loops close their connections before the interpreter goes.
    for runner in list(_runners.values()):
        runner.close()
