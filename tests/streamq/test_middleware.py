"""Middleware around enqueue and around handler runs: order, context carried, exceptions."""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from streamq import App, Context, EnqueueCall, HandlerCall, JobFailed

tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenant", default=None)

Next = Callable[[], Awaitable[Any]]


async def test_middlewares_run_in_registration_order_around_both(
    app_factory, queue, run_worker
) -> None:
    app: App = app_factory()
    seen: list[str] = []

    @app.task("echo", queue=queue)
    async def echo(ctx: Context, x: int) -> int:
        seen.append("handler")
        return x

    def recorder(label: str) -> Callable[[Any, Next], Awaitable[Any]]:
        async def mw(call: EnqueueCall | HandlerCall, call_next: Next) -> Any:
            seen.append(f"{label}>{call.kind}")
            out = await call_next()
            seen.append(f"{label}<{call.kind}")
            return out

        return mw

    app.middleware(recorder("a"))
    app.middleware(recorder("b"))
    app.middleware(recorder("p"), on="process")

    job = await app.enqueue("echo", 7)
    assert seen == ["a>enqueue", "b>enqueue", "b<enqueue", "a<enqueue"]
    seen.clear()
    async with run_worker(app):
        assert await job.result(timeout=10) == 7
    assert seen == [
        "a>process",
        "b>process",
        "p>process",
        "handler",
        "p<process",
        "b<process",
        "a<process",
    ]


async def test_a_middleware_carries_a_tenant_from_producer_to_handler(
    app_factory, queue, run_worker
) -> None:
    app: App = app_factory()

    @app.task("whose", queue=queue)
    async def whose(ctx: Context, x: int) -> str | None:
        return tenant.get()

    @app.task("whose-threaded", queue=queue)
    def whose_threaded(ctx: Context, x: int) -> str | None:
        return tenant.get()

    @app.middleware
    async def tenancy(call: EnqueueCall | HandlerCall, call_next: Next) -> Any:
        if isinstance(call, EnqueueCall):
            for job in call.jobs:
                if tenant.get() is None:
                    raise PermissionError("no tenant for this enqueue")
                job.headers["tenant"] = tenant.get() or ""
            return await call_next()
        token = tenant.set(call.headers.get("tenant"))
        try:
            return await call_next()
        finally:
            tenant.reset(token)

    with pytest.raises(PermissionError):
        await app.enqueue("whose", 0, id="refused")
    assert await app.job(queue, "refused") is None  # refused before anything was written

    tenant.set("acme")
    first = await app.enqueue("whose", 1)
    threaded = await app.enqueue("whose-threaded", 2)
    tenant.set("globex")
    second = await app.enqueue("whose", 3)
    tenant.set(None)  # the worker sees only what the job carried
    async with run_worker(app):
        assert await first.result(timeout=10) == "acme"
        assert await threaded.result(timeout=10) == "acme"
        assert await second.result(timeout=10) == "globex"


async def test_middlewares_see_the_handlers_exceptions(app_factory, queue, run_worker) -> None:
    app: App = app_factory()
    errors: list[tuple[int, str]] = []

    @app.task("fails", queue=queue, max_attempts=2, backoff=0.01)
    async def fails(ctx: Context, x: int) -> int:
        raise ValueError(f"bad {x} on attempt {ctx.attempt}")

    @app.middleware(on="process")
    async def watch(call: HandlerCall, call_next: Next) -> Any:
        try:
            return await call_next()
        except ValueError as exc:
            errors.append((call.attempt, str(exc)))
            raise

    job = await app.enqueue("fails", 5)
    async with run_worker(app):
        with pytest.raises(JobFailed, match="bad 5 on attempt 2"):
            await job.result(timeout=10)
    assert errors == [(1, "bad 5 on attempt 1"), (2, "bad 5 on attempt 2")]


def test_a_middleware_must_be_callable() -> None:
    app = App("mw")
    from streamq import ConfigurationError

    with pytest.raises(ConfigurationError):
        app.middleware("not a function")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        app.middleware(lambda call, nxt: nxt(), on="sometimes")  # type: ignore[arg-type]
