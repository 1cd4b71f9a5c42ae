"""Running one delivery: decode, call the handler under its timeout, turn the outcome into a
settlement (completed, retry with backoff, dead letter, cancelled or handed back)."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import msgspec

from streamq._codec import encode
from streamq._context import Context
from streamq._errors import Fatal, Retry
from streamq._metrics import (
    JOB_RUN_SECONDS,
    JOB_WAIT_SECONDS,
    JOBS_COMPLETED,
    JOBS_DEAD,
    JOBS_FAILED,
    JOBS_RETRIED,
)
from streamq._middleware import HandlerCall, middlewares_of

if TYPE_CHECKING:
    from streamq._context import Application
    from streamq._delivery import Delivery
    from streamq._isolation import ProcessPool
    from streamq._settle import Settler
    from streamq._task import TaskDef

log = logging.getLogger(__name__)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class Executor:
    def __init__(
        self,
        app: Application,
        settler: Settler,
        limiter: anyio.CapacityLimiter,
        on_unknown: Callable[[Delivery], Awaitable[None]] | None = None,
        processes: ProcessPool | None = None,
    ) -> None:
        self._app = app
        self._settler = settler
        self._limiter = limiter
        # A job without a handler here: the worker hands it back (see _roster); else dead.
        self._on_unknown = on_unknown
        # Runs isolation="process" handlers in killable subprocesses (see _isolation).
        self._processes = processes

    def _ttl(self, d: Delivery, dead: bool = False) -> int:
        return _ms(self._app.broker.retention.dead_ttl if dead else d.spec.result_ttl)

    def _dead(self, d: Delivery, reason: str, error: str) -> None:
        log.warning(
            "job dead: %s",
            error,
            extra={"job_id": d.job_id, "queue": d.queue, "attempt": d.attempt, "reason": reason},
        )
        JOBS_DEAD.labels(d.queue, d.spec.name).inc()
        self._settler.add(d, "dead", data=error, ttl_ms=self._ttl(d, dead=True), reason=reason)

    async def run(self, d: Delivery) -> None:
        spec = d.spec
        task = self._app.registry.tasks.get(spec.name)
        if task is None:
            if self._on_unknown is not None:
                await self._on_unknown(d)
                return
            self._dead(d, "unknown_job", f"no handler for {spec.name!r} in this worker")
            return
        try:
            payload = task.decode_payload(bytes(spec.payload))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            self._dead(d, "bad_payload", f"payload does not fit {spec.name}: {exc}")
            return
        if d.deliveries == 1 and d.attempt == 1:
            JOB_WAIT_SECONDS.labels(d.queue, spec.name).observe(
                max(time.time() - spec.created_at, 0)
            )
        ctx = Context(self._app, d)
        started = time.perf_counter()
        # The worker's own task definition decides; the producer's stored value is the fallback.
        timeout = task.timeout if task.timeout is not None else spec.timeout
        middlewares = middlewares_of(self._app.broker)
        isolated = task.isolation == "process" and self._processes is not None
        try:
            # A subprocess applies the timeout itself, from the moment the handler starts.
            async with asyncio.timeout(None if isolated else timeout):
                if middlewares is not None and middlewares.process:
                    result = await middlewares.around_handler(
                        HandlerCall(ctx, payload, dict(spec.headers or {})),
                        functools.partial(self._call, task, ctx, payload),
                    )
                elif isolated and self._processes is not None:
                    result = await self._processes.run(task.fn, ctx, payload, timeout)
                elif task.is_async:
                    result = await task.fn(ctx, payload)
                else:
                    result = await anyio.to_thread.run_sync(
                        functools.partial(task.fn, ctx, payload),
                        abandon_on_cancel=True,
                        limiter=self._limiter,
                    )
        except asyncio.CancelledError:
            reason = d.stop_reason
            if reason == "cancel":
                self._settler.add(d, "cancelled", ttl_ms=self._ttl(d))
            elif reason == "shutdown":
                self._settler.add(d, "hand_back")
            elif reason != "lost":
                raise
            return
        except Fatal as exc:
            JOBS_FAILED.labels(d.queue, spec.name).inc()
            self._dead(d, "fatal", _describe(exc))
            return
        except Retry as exc:
            JOBS_RETRIED.labels(d.queue, spec.name).inc()
            if exc.count_attempt:
                JOBS_FAILED.labels(d.queue, spec.name).inc()
                if d.attempt >= spec.max_attempts:
                    self._dead(d, "max_attempts", _describe(exc))
                    return
            self._settler.add(
                d,
                "retry",
                data=_describe(exc),
                delay_ms=_ms(max(exc.delay, 0.0)),
                count_attempt=exc.count_attempt,
            )
            return
        except Exception as exc:
            JOBS_FAILED.labels(d.queue, spec.name).inc()
            error = (
                f"timed out after {timeout:g} s"
                if isinstance(exc, TimeoutError) and timeout
                else _describe(exc)
            )
            if d.attempt >= spec.max_attempts:
                self._dead(d, "max_attempts", error)
                return
            delay = spec.backoff.delay(d.attempt, random.random())
            log.info(
                "job failed, retrying in %.2f s: %s",
                delay,
                error,
                extra={"job_id": d.job_id, "queue": d.queue, "attempt": d.attempt},
            )
            JOBS_RETRIED.labels(d.queue, spec.name).inc()
            self._settler.add(d, "retry", data=error, delay_ms=_ms(delay))
            return
        finally:
            JOB_RUN_SECONDS.labels(d.queue, spec.name).observe(time.perf_counter() - started)
        try:
            data = encode(result)
        except (TypeError, msgspec.EncodeError) as exc:
            self._dead(d, "bad_result", f"result of {spec.name} cannot be encoded: {exc}")
            return
        JOBS_COMPLETED.labels(d.queue, spec.name).inc()
        self._settler.add(d, "completed", data=data, ttl_ms=self._ttl(d))

    async def _call(self, task: TaskDef, ctx: Context, payload: Any) -> Any:
        """The handler call at the centre of the middlewares."""
        if task.isolation == "process" and self._processes is not None:
            timeout = task.timeout if task.timeout is not None else ctx.job.timeout
            return await self._processes.run(task.fn, ctx, payload, timeout)
        if task.is_async:
            return await task.fn(ctx, payload)
        return await anyio.to_thread.run_sync(
            functools.partial(task.fn, ctx, payload), abandon_on_cancel=True, limiter=self._limiter
        )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
