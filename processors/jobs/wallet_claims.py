"""Which dashboard analysis a wallet has in progress, so that a second request for the same
wallet is answered at once (02: "Analysis already in progress", with that job to watch)
instead of queueing a job that would wait for the wallet's lock.

A claim is one key per wallet naming the job that holds it; it is taken with ``SET NX``, and
taken over (compare-and-set) only from a job that has finished or no longer exists, so two
requests racing for an idle wallet get one job between them. The claim expires after the job's
timeout and lease, so a job that never ran cannot hold a wallet for ever; the job still takes
the wallet's lock (``coordination.wallet_lock``) while it runs.
"""

from __future__ import annotations

import time

import msgspec

from processors.config import JOBS
from processors.runtime import Runtime

__all__ = ["Running", "claim_wallet", "set_wallet_claim"]

# A claim younger than this whose job is not readable yet is a job being enqueued right now.
_ENQUEUEING_MS = 10_000

_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


class Running(msgspec.Struct, frozen=True, kw_only=True):
    """The analysis that holds a wallet."""

    queue: str
    job_id: str
    state: str
    request_id: str | None = None


def _ttl_ms() -> int:
    spec = JOBS["dashboard-wallet-analysis"]
    return int((spec.timeout + (spec.stale_after or 0.0)) * 1000)


def _value(queue: str, job_id: str) -> str:
    return f"{queue}\n{job_id}\n{int(time.time() * 1000)}"


async def claim_wallet(rt: Runtime, wallet: str, queue: str, job_id: str) -> Running | None:
    """Claims ``wallet`` for job ``job_id`` (to be enqueued next); returns None if claimed,
    else the unfinished analysis that holds it."""
    r = await rt.redis()
    key = rt.key("dashboard-claim", wallet)
    mine = _value(queue, job_id)
    while True:
        if await r.set(key, mine, nx=True, px=_ttl_ms()):
            return None
        current = await r.get(key)
        if current is None:
            continue  # expired between the two calls
        held_queue, held_id, since = current.decode().split("\n")
        job = await rt.app.job(held_queue, held_id)
        if job is not None and not job.finished:
            return Running(
                queue=held_queue, job_id=held_id, state=job.state, request_id=job.request_id
            )
        if job is None and time.time() * 1000 - int(since) < _ENQUEUEING_MS:
            return Running(queue=held_queue, job_id=held_id, state="queued")
        if await r.eval(_TAKE_OVER, 1, key, current, mine, _ttl_ms()):
            return None


async def set_wallet_claim(rt: Runtime, wallet: str, queue: str, job_id: str) -> None:
    """Points the wallet's claim at ``job_id`` whatever held it (a job queued behind another)."""
    r = await rt.redis()
    await r.set(rt.key("dashboard-claim", wallet), _value(queue, job_id), px=_ttl_ms())
