"""The per-wallet index of dashboard and similarity jobs, behind
``GET /api/v1/jobs/wallet/{address}/active``: a sorted set per wallet, trimmed to the
settings' ``wallet_index_ttl``."""

from __future__ import annotations

import time

import streamq
from processors.runtime import Runtime

__all__ = ["active_wallet_jobs", "index_wallet_job", "wallet_jobs"]


async def index_wallet_job(rt: Runtime, wallet: str, queue: str, job_id: str) -> None:
    """Records that job ``job_id`` of ``queue`` concerns ``wallet``."""
    key = rt.key("wallet-jobs", wallet)
    ttl = int(rt.settings.wallet_index_ttl)
    now = time.time()
    async with (await rt.redis()).pipeline(transaction=False) as pipe:
        pipe.zadd(key, {f"{queue}\n{job_id}": now})
        pipe.zremrangebyscore(key, 0, now - ttl)
        pipe.expire(key, ttl)
        await pipe.execute()


async def wallet_jobs(rt: Runtime, wallet: str) -> list[tuple[str, str]]:
    """(queue, job id) of the wallet's jobs indexed within the last ``wallet_index_ttl``."""
    raw = await (await rt.redis()).zrange(rt.key("wallet-jobs", wallet), 0, -1)
    out: list[tuple[str, str]] = []
    for item in raw:
        queue, _, job_id = item.decode().partition("\n")
        out.append((queue, job_id))
    return out


async def active_wallet_jobs(rt: Runtime, wallet: str) -> list[streamq.Job]:
    """The wallet's indexed dashboard and similarity jobs that have not finished."""
    jobs: list[streamq.Job] = []
    for queue, job_id in await wallet_jobs(rt, wallet):
        job = await rt.app.job(queue, job_id)
        if job is not None and not job.finished:
            jobs.append(job)
    return jobs
