"""Distributed locks: token-owned, renewed while held, released only by their owner, with a
fencing number that grows with every acquisition (so a holder that lost its lock without knowing
can be refused by whatever it writes to)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from typing import TYPE_CHECKING

from streamq._connection import broker_errors
from streamq._errors import ConfigurationError, LockError

if TYPE_CHECKING:
    from streamq._broker import HasBroker

log = logging.getLogger(__name__)

# A blocked acquirer re-tries at least this often even if the holder's lease is long, so a
# release is noticed quickly; jitter keeps many waiters from retrying in lock step.
_MAX_POLL = 0.1
_MIN_POLL = 0.005


class Lock:
    """``async with Lock(app, "wallet:abc", ttl=30):`` holds the lock ``name`` across processes.

    The lock is owned by a random token, renewed every ``ttl/3`` seconds while held, and expires
    ``ttl`` seconds after its holder stops renewing (a crashed holder releases it that way).
    ``fence`` is the lock's fencing number for this acquisition (strictly increasing).

    ``blocking=False`` fails at once when the lock is taken; ``timeout`` bounds the wait.
    Raises ``LockError`` when the lock is not acquired in time, and on exit if ownership was
    lost while held (the lease expired before a renewal); ``ConfigurationError`` for a bad name
    or ttl; ``BrokerUnavailable`` when Redis fails."""

    def __init__(
        self,
        app: HasBroker,
        name: str,
        ttl: float = 30.0,
        *,
        blocking: bool = True,
        timeout: float | None = None,
    ) -> None:
        if not name or "{" in name or "}" in name:
            raise ConfigurationError(f"lock name {name!r} must be non-empty without braces")
        if not ttl > 0:
            raise ConfigurationError("lock ttl must be > 0")
        self.broker = app.broker
        self.name = name
        self.ttl = ttl
        self.blocking = blocking
        self.timeout = timeout
        self.fence = 0
        self.lost = False
        self._token: str | None = None
        self._renewer: asyncio.Task[None] | None = None

    @property
    def locked(self) -> bool:
        """True while this object holds the lock (as far as it knows)."""
        return self._token is not None and not self.lost

    async def acquire(self) -> bool:
        """Takes the lock; False only with ``blocking=False`` when it is held elsewhere.
        Raises ``LockError`` when ``timeout`` passes first."""
        if self._token is not None:
            raise LockError(f"lock {self.name!r} is already held by this object")
        await self.broker.connect()
        token = secrets.token_hex(16)
        ttl_ms = max(int(self.ttl * 1000), 1)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            with broker_errors(f"taking lock {self.name}"):
                fence, left_ms = await self.broker.scripts.lock(self.name, token, ttl_ms)
            if fence:
                self._token, self.fence, self.lost = token, fence, False
                self._renewer = asyncio.create_task(self._renew(token), name=f"lock:{self.name}")
                return True
            if not self.blocking:
                return False
            wait = min(max(left_ms / 1000, _MIN_POLL), _MAX_POLL) * (0.5 + random.random())
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LockError(f"lock {self.name!r} not acquired within {self.timeout} s")
                wait = min(wait, remaining)
            await asyncio.sleep(wait)

    async def _renew(self, token: str) -> None:
        ttl_ms = max(int(self.ttl * 1000), 1)
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                ok = await self.broker.scripts.relock(self.name, token, ttl_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep trying: the lease still has 2/3 of its time
                log.warning("renewing lock %s failed: %s", self.name, exc)
                continue
            if not ok:
                log.warning("lock %s was lost (its lease expired before renewal)", self.name)
                self.lost = True
                return

    async def release(self) -> bool:
        """Releases the lock if this object still owns it; True if it did."""
        token, self._token = self._token, None
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if token is None:
            return False
        with broker_errors(f"releasing lock {self.name}"):
            return await self.broker.scripts.unlock(self.name, token)

    async def __aenter__(self) -> Lock:
        if not await self.acquire():
            raise LockError(f"lock {self.name!r} is held elsewhere")
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        lost = self.lost
        released = await self.release()
        if (lost or not released) and exc_type is None:
            raise LockError(f"lock {self.name!r} was lost while held (lease of {self.ttl} s)")
