"""Readiness: one bounded, briefly cached PING shared by every ``/readyz`` caller."""

from __future__ import annotations

import asyncio
import contextlib
import time

import streamq


class Readiness:
    """Answers "does Redis answer?" within ``deadline`` seconds, from a probe at most
    ``cache_seconds`` old. At most one PING is in flight, however many callers ask: a probe
    that hangs (a frozen Redis) keeps running in the background and later callers wait for
    the same one, each for at most ``deadline``."""

    def __init__(self, app: streamq.App, *, deadline: float, cache_seconds: float) -> None:
        self.app = app
        self.deadline = deadline
        self.cache_seconds = cache_seconds
        self._probe: asyncio.Task[bool] | None = None
        self._answer: tuple[float, bool] | None = None

    async def ready(self) -> bool:
        now = time.monotonic()
        if self._answer is not None and now - self._answer[0] < self.cache_seconds:
            return self._answer[1]
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self.app.ping(), name="streamq-readiness")
        try:
            ok = await asyncio.wait_for(asyncio.shield(self._probe), self.deadline)
        except TimeoutError:
            ok = False
        self._answer = (time.monotonic(), ok)
        return ok

    async def close(self) -> None:
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
