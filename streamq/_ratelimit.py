"""Queue rate limits: at most ``limit`` job starts per ``per`` seconds across every worker.

The limit lives in Redis (so every worker process obeys it, and it can be changed at run time);
each fetch first asks for admission, and a worker with no admission sleeps for the time the
script says the next start becomes possible instead of spinning.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from streamq import _keys
from streamq._connection import broker_errors
from streamq._errors import ConfigurationError

if TYPE_CHECKING:
    from streamq._broker import Broker

log = logging.getLogger(__name__)

# How often a busy worker re-reads whether its queue is limited (a limit set at run time
# applies within this long); unlimited queues pay nothing else on the fetch path. A worker
# that was idle re-reads it before its first fetch after waking (``recheck``): jobs that arrive
# together with a new limit are admitted under it, not taken all at once.
_RECHECK = 1.0
# A worker with no admission sleeps at most this long before asking again (keeps stop quick).
_MAX_WAIT = 0.25


class RateLimit(msgspec.Struct, frozen=True, kw_only=True):
    queue: str
    limit: int
    per: float


config_key = _keys.ratelimit
log_key = _keys.ratelimit_log


async def set_rate_limit(broker: Broker, queue: str, limit: int | None, per: float = 1.0) -> None:
    """Limits ``queue`` to ``limit`` starts per ``per`` seconds; ``limit=None`` removes it.
    Raises ``ConfigurationError`` for a bad limit."""
    await broker.register_queue(queue)
    with broker_errors(f"setting the rate limit of {queue}"):
        if limit is None:
            await broker.redis.delete(config_key(queue), log_key(queue))
            return
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"rate limit must be a positive integer, not {limit!r}")
        if not (per > 0 and math.isfinite(per)):
            raise ConfigurationError(f"rate limit window must be > 0 seconds, not {per!r}")
        await broker.redis.hset(
            config_key(queue), mapping={"limit": limit, "per_ms": max(int(per * 1000), 1)}
        )


async def get_rate_limit(broker: Broker, queue: str) -> RateLimit | None:
    await broker.connect()
    with broker_errors(f"reading the rate limit of {queue}"):
        limit, per_ms = await broker.redis.hmget(config_key(queue), "limit", "per_ms")
    if limit is None or per_ms is None:
        return None
    return RateLimit(queue=queue, limit=int(limit), per=int(per_ms) / 1000)


class StartLimiter:
    """The fetch loop's view of one queue's rate limit."""

    def __init__(self, broker: Broker, queue: str) -> None:
        self.broker = broker
        self.queue = queue
        self._limited = False
        self._checked = -math.inf

    def recheck(self) -> None:
        """Makes the next admission re-read the limit (after an idle wait)."""
        self._checked = -math.inf

    async def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < _RECHECK:
            return
        self._checked = now
        try:
            self._limited = bool(await self.broker.redis.exists(config_key(self.queue)))
        except Exception as exc:  # the fetch itself will report Redis trouble
            log.debug("checking the rate limit of %s: %s", self.queue, exc)

    async def admit(self, give_back: Callable[[int], None], wanted: int) -> int:
        """How many of ``wanted`` starts may happen now; the rest of the worker's slots go back
        through ``give_back``. With none admitted, waits until the next one may be (at most
        ``_MAX_WAIT``)."""
        await self._refresh()
        if not self._limited:
            return wanted
        try:
            admitted, wait_ms = await self.broker.scripts.admit(self.queue, wanted)
        except asyncio.CancelledError:
            give_back(wanted)
            raise
        except Exception as exc:
            give_back(wanted)
            log.warning("rate limit admission on %s failed: %s", self.queue, exc)
            await asyncio.sleep(0.1)
            return 0
        give_back(wanted - admitted)
        if admitted == 0:
            await asyncio.sleep(min(wait_ms / 1000, _MAX_WAIT))
        return admitted

    async def refund(self, unused: int) -> None:
        """Gives back admitted starts that found no job to start."""
        if not self._limited or unused <= 0:
            return
        try:
            await self.broker.scripts.refund(self.queue, unused)
        except Exception as exc:  # a lost refund only makes the limit a little stricter
            log.debug("refunding %d starts on %s: %s", unused, self.queue, exc)
