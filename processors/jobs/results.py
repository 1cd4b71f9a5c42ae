"""Results kept by request id (03's ``analysis:{wallet}:{reqId}`` and ``enrich:{wallet}:{reqId}``),
for ``CACHE.results_ttl``, in the deployment's own Redis keys:

- the jobs of a request by kind (``similarity``, ``dashboard``, ``enrichment``): where to find
  their results (``GET /api/v1/results/{requestId}``);
- the enriched batches of an enrichment job, appended as each is ready (03's progressive
  results), read by the results endpoint and streamed by its SSE endpoint. A new attempt of the
  job starts the list over.
"""

from __future__ import annotations

import msgspec

from processors.analysis.enrichment import EnrichedBatch
from processors.config import CACHE
from processors.runtime import Runtime

__all__ = [
    "append_batch",
    "read_batches",
    "remember_request_job",
    "request_jobs",
    "reset_batches",
]

_encode = msgspec.json.Encoder().encode
_decode_batch = msgspec.json.Decoder(EnrichedBatch).decode


def _ttl() -> int:
    return max(1, int(CACHE.results_ttl))


def _batches_key(rt: Runtime, job_id: str) -> str:
    return rt.key("enrich-batches", job_id)


async def reset_batches(rt: Runtime, job_id: str) -> None:
    await (await rt.redis()).delete(_batches_key(rt, job_id))


async def append_batch(rt: Runtime, job_id: str, batch: EnrichedBatch) -> None:
    key = _batches_key(rt, job_id)
    async with (await rt.redis()).pipeline(transaction=True) as pipe:
        pipe.rpush(key, _encode(batch))
        pipe.expire(key, _ttl())
        await pipe.execute()


async def read_batches(rt: Runtime, job_id: str, start: int = 0) -> list[EnrichedBatch]:
    """The job's batches from index ``start`` on, in order."""
    raw = await (await rt.redis()).lrange(_batches_key(rt, job_id), start, -1)
    return [_decode_batch(r) for r in raw]


async def remember_request_job(
    rt: Runtime, request_id: str, kind: str, queue: str, job_id: str
) -> None:
    """Records that request ``request_id``'s ``kind`` job is ``job_id`` on ``queue``."""
    key = rt.key("request", request_id)
    async with (await rt.redis()).pipeline(transaction=True) as pipe:
        pipe.hset(key, kind, f"{queue}\n{job_id}")
        pipe.expire(key, _ttl())
        await pipe.execute()


async def request_jobs(rt: Runtime, request_id: str) -> dict[str, tuple[str, str]]:
    """Kind -> (queue, job id) of the request's jobs, while within ``CACHE.results_ttl``."""
    raw = await (await rt.redis()).hgetall(rt.key("request", request_id))
    out: dict[str, tuple[str, str]] = {}
    for kind, value in raw.items():
        queue, _, job_id = value.decode().partition("\n")
        out[kind.decode()] = (queue, job_id)
    return out
