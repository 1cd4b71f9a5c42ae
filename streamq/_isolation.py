"""Process isolation: handlers declared ``@app.task(..., isolation="process")`` run in a pool
of worker subprocesses (multiprocessing, ``spawn`` context) that can be killed.

A thread cannot be stopped from outside, so a plain handler that overruns its timeout or is
cancelled keeps running after its job is settled. A process can: on a timeout, a cancel or a
shutdown the subprocess running the job is killed (SIGKILL) and another one is started for the
next job. Progress reported in the subprocess (``await ctx.progress(...)``, or
``ctx.progress_from_thread(...)`` in a plain function) is relayed to the worker, which records
it; the result or the exception comes back the same way, so retries, ``Fatal`` and ``Retry``
behave as in the worker. A subprocess that dies while running a job (a crash, ``os._exit``, the
OOM killer) is a failed attempt (:class:`HandlerProcessDied`), not a lost job.

Handlers must be module-level functions (they are sent to the subprocess by reference), and
payloads and results must pickle (msgspec Structs and plain data do).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import inspect
import logging
import math
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from streamq._errors import ConfigurationError, StreamqError
from streamq._forward import Forward

if TYPE_CHECKING:
    from streamq._context import Context
    from streamq._types import Job

log = logging.getLogger(__name__)

_SPAWN = multiprocessing.get_context("spawn")


class HandlerProcessDied(StreamqError):
    """The subprocess running a process-isolated handler exited before it answered (a crash):
    counted as a failed attempt."""


@dataclass(slots=True)
class _Child:
    process: BaseProcess
    conn: Connection


class ProcessPool:
    """Up to ``size`` subprocesses, started on demand and reused; a job whose handler must stop
    takes its subprocess down with it."""

    def __init__(self, size: int, preload: Sequence[str] = ()) -> None:
        if size < 1:
            raise ConfigurationError("processes must be >= 1")
        self.size = size
        # Modules a new subprocess imports before its first job (the handlers' modules).
        self._preload = tuple(m for m in preload if m != "__main__")
        self._idle: list[_Child] = []
        self._slots = anyio.Semaphore(size)
        # One thread per running job waits for its subprocess's messages.
        self._readers = anyio.CapacityLimiter(size)
        self._closed = False

    def warm(self) -> None:
        """Starts the subprocesses now, so the first jobs do not wait for their imports."""
        while len(self._idle) < self.size:
            self._idle.append(self._start())

    async def run(
        self, fn: Callable[..., Any], ctx: Context, payload: Any, timeout: float | None
    ) -> Any:
        """Runs ``fn(ctx, payload)`` in a subprocess; returns its result or raises what it
        raised (``HandlerProcessDied`` if it died, ``TimeoutError`` after ``timeout`` seconds
        counted from when the handler started). Cancelling this kills the subprocess."""
        async with self._slots:
            child = self._idle.pop() if self._idle else self._start()
            keep = False
            try:
                ok, value = await self._exchange(child, fn, ctx, payload, timeout)
                keep = not self._closed and child.process.is_alive()
            finally:
                # Not kept (cancelled, timed out, died, or the pool closed): killed at once, with
                # no await, so even a cancelled task stops it; a fresh one takes its place.
                if keep:
                    self._idle.append(child)
                else:
                    _kill(child)
                    if not self._closed:
                        self._idle.append(self._start())
        if ok:
            return value
        raise value

    def _start(self) -> _Child:
        # Started from the event loop's thread, which lives as long as the worker: the
        # subprocess's parent-death signal is tied to the starting thread.
        ours, theirs = _SPAWN.Pipe()
        process = _SPAWN.Process(
            target=_child_main,
            args=(theirs, os.getpid(), self._preload),
            name="streamq-handler",
            daemon=True,
        )
        process.start()
        theirs.close()
        return _Child(process, ours)

    async def _exchange(
        self,
        child: _Child,
        fn: Callable[..., Any],
        ctx: Context,
        payload: Any,
        timeout: float | None,
    ) -> tuple[bool, Any]:
        try:
            child.conn.send(("run", fn, ctx.job, payload))
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            return False, ConfigurationError(
                f"task {ctx.name}: the handler or its payload cannot be sent to a subprocess "
                f"(a process-isolated handler must be a module-level function): {exc}"
            )
        except OSError:
            return False, _died(child)
        deadline = math.inf
        while True:
            # The timeout runs from the handler's start, not from the subprocess's imports.
            with anyio.fail_after(deadline - anyio.current_time() if timeout else None):
                message = await anyio.to_thread.run_sync(
                    _receive, child.conn, abandon_on_cancel=True, limiter=self._readers
                )
            if message is None:
                return False, _died(child)
            kind = message[0]
            if kind == "started":
                if timeout:
                    deadline = anyio.current_time() + timeout
            elif kind == "progress":
                await ctx.progress(message[1], message[2])
            elif kind == "log":
                await ctx.log(message[1], **message[2])
            elif kind == "ok":
                return True, message[1]
            else:
                return False, message[1]

    async def close(self) -> None:
        """Stops the idle subprocesses (running ones are stopped by their jobs)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for child in idle:
            _kill(child)


def _receive(conn: Connection) -> Any:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


def _died(child: _Child) -> HandlerProcessDied:
    child.process.join(1)
    code = child.process.exitcode
    how = f"exit code {code}" if code is not None and code >= 0 else f"signal {-(code or 0)}"
    return HandlerProcessDied(f"the handler's subprocess died ({how})")


def _kill(child: _Child) -> None:
    with contextlib.suppress(OSError, ValueError):
        child.process.kill()

    def reap() -> None:
        child.process.join(5)
        with contextlib.suppress(OSError):
            child.conn.close()

    threading.Thread(target=reap, name="streamq-reap", daemon=True).start()


# -- in the subprocess ----------------------------------------------------------------------------


class ProcessContext:
    """What a process-isolated handler sees of its job: the job's identity and progress.

    Enqueueing and reading a flow's children need the worker's connection: do them in a handler
    that runs in the worker."""

    def __init__(self, job: Job, conn: Connection) -> None:
        self.job = job
        self._conn = conn

    job_id = Forward[str]("job.id")
    queue = Forward[str]("job.queue")
    name = Forward[str]("job.name")
    attempt = Forward[int]("job.attempt")
    deliveries = Forward[int]("job.deliveries")
    request_id = Forward[str | None]("job.request_id")
    parent = Forward[str | None]("job.parent")

    async def progress(self, percent: float, message: str = "") -> bool:
        """Records progress (relayed to the worker, which writes it)."""
        return self.progress_from_thread(percent, message)

    def progress_from_thread(self, percent: float, message: str = "") -> bool:
        """:meth:`progress` for plain handlers."""
        self._conn.send(("progress", float(percent), str(message)))
        return True

    async def log(self, message: str, **fields: Any) -> bool:
        """Appends a line to the job's log (relayed to the worker, which writes it)."""
        return self.log_from_thread(message, **fields)

    def log_from_thread(self, message: str, **fields: Any) -> bool:
        """:meth:`log` for plain handlers."""
        from streamq._joblog import plain_fields

        self._conn.send(("log", str(message), plain_fields(fields)))
        return True

    async def enqueue(self, name: str, payload: Any = None, **options: Any) -> Any:
        raise ConfigurationError("a process-isolated handler cannot enqueue: return a result")

    async def children(self) -> Any:
        raise ConfigurationError("a process-isolated handler cannot read a flow's children")


def _child_main(conn: Connection, parent: int, preload: tuple[str, ...]) -> None:
    _die_with_parent(parent)
    # Ctrl-C reaches the whole process group: the worker decides what happens to the job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception as exc:  # the job that needs it reports the error
            log.warning("cannot import %s in a handler subprocess: %s", module, exc)
    while True:
        try:
            _, fn, job, payload = conn.recv()
        except (EOFError, OSError):
            return
        except Exception as exc:  # the handler's module or payload type cannot be imported
            conn.send(("raised", TypeError(f"cannot load the job in a subprocess: {exc!r}")))
            continue
        conn.send(("started",))
        ctx = ProcessContext(job, conn)
        try:
            if inspect.iscoroutinefunction(fn):
                reply: tuple[str, Any] = ("ok", asyncio.run(fn(ctx, payload)))
            else:
                reply = ("ok", fn(ctx, payload))
        except Exception as exc:
            reply = ("raised", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # an unpicklable result or exception
            conn.send(("raised", TypeError(f"cannot send the outcome back: {exc!r}")))


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL when the worker dies, so a running handler never outlives it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
