"""An async token bucket: at most ``rate`` acquisitions per second, ``burst`` at once.

Callers that find the bucket empty reserve the next token and sleep until it is due, so waiting
callers are served in arrival order and the limit holds over any window of time.
"""

from __future__ import annotations

import time

import anyio

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token bucket shared by every call of one client (one instance per service)."""

    def __init__(self, rate: float, *, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        """Wait until a call may go out."""
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            # Take the token now, even if that drives the balance negative: the debt is the wait,
            # and the next caller sees it and queues behind us.
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            await anyio.sleep(wait)
