"""Results as they come and by request id (03):

- ``GET /api/v1/jobs/{id}/enrichment``: an enrichment job's enriched batches ready so far, and
  its final result once complete;
- ``GET /api/v1/jobs/{id}/enrichment/events``: the same batches pushed as server-sent events
  (``event: batch``, ``id`` the batch index, so ``Last-Event-ID`` resumes after it), then one
  event named after the job's final state;
- ``GET /api/v1/results/{requestId}``: what a request produced (similarity, dashboard,
  enrichment), for ``CACHE.results_ttl`` after it was made.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

import streamq
from processors.analysis.enrichment import EnrichedBatch
from processors.analysis.similarity import SimilarityResult
from processors.api.requests import checked_job_id, require_queues, runtime
from processors.config import ANALYSIS_OPERATIONS, CACHE, ENRICHMENT_OPERATIONS
from processors.jobs.results import read_batches, request_jobs
from processors.runtime import Runtime
from server import ApiError, Call, OperationTable, json_response

__all__ = ["EnrichmentResults", "RequestResults", "operation"]

TAGS = ("results",)
# The handlers check the queues they read.
operation = OperationTable(queue_filtered=True, errors=(400, 404), tags=TAGS)
_encode = msgspec.json.Encoder().encode


class EnrichmentResults(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    job_id: str
    state: str
    complete: bool  # the job finished: no more batches will come
    holdings_ready: int
    batches: list[EnrichedBatch]
    result: Any = None  # the job's result (every wallet, valued) once completed
    error: str | None = None
    events_url: str


class RequestJob(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    job_id: str
    queue_name: str
    state: str
    result: Any = None
    error: str | None = None


class RequestResults(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    request_id: str
    similarity: SimilarityResult | None = None
    jobs: dict[str, RequestJob]  # by kind: similarity, dashboard, enrichment
    enrichment: EnrichmentResults | None = None


async def _enrichment_job(rt: Runtime, call: Call, job_id: str) -> streamq.Job:
    require_queues(call, "read", [rt.queue(ENRICHMENT_OPERATIONS)])
    job = await rt.app.job(rt.queue(ENRICHMENT_OPERATIONS), job_id)
    if job is None or job.name != "enrich-token-balances":
        raise ApiError(404, "job_not_found", f"no enrichment job {job_id!r} (or it expired)")
    return job


async def enrichment_results(rt: Runtime, job: streamq.Job) -> EnrichmentResults:
    """``job``'s batches, read after its state: if that state was final, they are all there."""
    batches = await read_batches(rt, job.id)
    return EnrichmentResults(
        job_id=job.id,
        state=job.state,
        complete=job.finished,
        holdings_ready=sum(len(b.tokens) for b in batches),
        batches=batches,
        result=job.result,
        error=job.error,
        events_url=f"/api/v1/jobs/{job.id}/enrichment/events",
    )


@operation.get(
    "/api/v1/jobs/{id}/enrichment",
    summary="An enrichment job's results so far",
    responses={200: EnrichmentResults},
)
async def enrichment_so_far(request: Request, call: Call) -> Response:
    """The enriched batches published so far, in order (together a prefix of what the job
    will have published when it completes), and the final result once it has."""
    rt = await runtime(call)
    job = await _enrichment_job(rt, call, checked_job_id(request.path_params["id"]))
    return json_response(await enrichment_results(rt, job))


def _sse(event: str, data: bytes, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n".encode() if event_id is not None else b""
    return head + f"event: {event}\n".encode() + b"data: " + data + b"\n\n"


@operation.get(
    "/api/v1/jobs/{id}/enrichment/events",
    summary="An enrichment job's results pushed as they come (SSE)",
    responses={200: "text/event-stream"},
    rate_limited=False,
)
async def enrichment_events(request: Request, call: Call) -> Response:
    """``event: batch`` with each enriched batch as it is published (``id``: its index), then
    ``event: completed`` (or ``dead``, ``cancelled``) with the job's state and error."""
    rt = await runtime(call)
    job = await _enrichment_job(rt, call, checked_job_id(request.path_params["id"]))
    last = request.headers.get("last-event-id", "")
    start = int(last) + 1 if last.isdigit() else 0
    return StreamingResponse(
        _follow(rt, job, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _follow(rt: Runtime, job: streamq.Job, start: int) -> AsyncIterator[bytes]:
    sent = start

    async def new_batches() -> AsyncIterator[bytes]:
        nonlocal sent
        for b in await read_batches(rt, job.id, sent):
            yield _sse("batch", _encode(b), str(b.index))
            sent = b.index + 1

    # Every batch is written before the progress event that announces it, so reading the list
    # after each of the job's events (from its first) misses none.
    events = rt.app.events(job.queue, after=job.first_event or "0-0", job=job.id)
    current = await rt.app.job(job.queue, job.id)
    final = current if current is not None and current.finished else None
    try:
        if final is None:
            async for event in events:
                async for chunk in new_batches():
                    yield chunk
                if event.terminal:
                    final = await rt.app.job(job.queue, job.id)
                    break
        async for chunk in new_batches():
            yield chunk
        state = final.state if final is not None else "missing"
        error = final.error if final is not None else None
        yield _sse(state, _encode({"jobId": job.id, "state": state, "error": error}))
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


@operation.get(
    "/api/v1/results/{requestId}",
    summary="What a request produced, by its request id",
    responses={200: RequestResults},
)
async def results_of_request(request: Request, call: Call) -> Response:
    """The similarity result and the jobs (with their results) of one request, kept for
    ``CACHE.results_ttl`` after the request; 404 once that has passed."""
    rt = await runtime(call)
    request_id = checked_job_id(request.path_params["requestId"])
    found = await request_jobs(rt, request_id)
    jobs: dict[str, RequestJob] = {}
    enrichment: EnrichmentResults | None = None
    for kind, (queue, job_id) in sorted(found.items()):
        if not call.allows("read", queue):
            continue  # what the caller may not read is left out, as if unknown
        job = await rt.app.job(queue, job_id)
        if job is None:
            continue
        jobs[kind] = RequestJob(
            job_id=job.id, queue_name=job.queue, state=job.state, result=job.result, error=job.error
        )
        if kind == "enrichment":
            enrichment = await enrichment_results(rt, job)
    similarity = None
    if call.allows("read", rt.queue(ANALYSIS_OPERATIONS)):
        similarity = await _similarity_within_ttl(rt, request_id)
    if not jobs and similarity is None:
        message = f"nothing known of request {request_id!r} (never made, or past its TTL)"
        raise ApiError(404, "results_not_found", message)
    return json_response(
        RequestResults(
            request_id=request_id, similarity=similarity, jobs=jobs, enrichment=enrichment
        )
    )


async def _similarity_within_ttl(rt: Runtime, request_id: str) -> SimilarityResult | None:
    store = rt.store
    created = await anyio.to_thread.run_sync(store.similarity_created_at, request_id)
    if created is None or time.time() - created > CACHE.results_ttl:
        return None  # past its TTL: cleanup-old-cache deletes it at its next run
    return await anyio.to_thread.run_sync(store.similarity, request_id)
