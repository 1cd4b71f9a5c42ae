"""01's job-starting API and the bulk flow's status:

- ``POST /api/v1/jobs/wallets/sync``: one ``sync-wallet`` job, 202 with its monitoring URL;
- ``POST /api/v1/jobs/wallets/analyze``: the bulk analysis flow (every wallet synced, then
  analysed for each type), 202 with the bulk job's id and monitoring URL;
- ``GET /api/v1/jobs/bulk/{bulkJobId}/status``: the bulk parent's state, and the progress of
  every wallet and every analysis type.
"""

from __future__ import annotations

from typing import Literal

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response

import streamq
from processors.api.requests import (
    accepted,
    checked_job_id,
    checked_wallets,
    events_url,
    invalid_job_as_400,
    new_request_id,
    require_queues,
    runtime,
)
from processors.api.schemas import (
    AnalyzeBody,
    BulkAccepted,
    BulkStatus,
    BulkTypeProgress,
    BulkWalletProgress,
    JobAccepted,
    SyncBody,
)
from processors.config import ANALYSIS_OPERATIONS, WALLET_OPERATIONS
from processors.ids import sync_job_id
from processors.jobs.bulk import BulkMember, bulk_members, start_bulk_analysis
from processors.jobs.types import BulkAnalysis, SyncWallet
from processors.runtime import Runtime
from server import ApiError, Call, OperationTable, json_response, read_json

__all__ = ["bulk_status_url", "operation"]

TAGS = ("application jobs",)
# The handlers check the queues they enqueue on or read.
operation = OperationTable(queue_filtered=True, tags=TAGS)
_enqueuing = operation.preset(scope="write", errors=(400, 413, 422))
_FAILED = {"dead", "cancelled", "missing"}
WalletState = Literal["waiting", "running", "completed", "failed"]


def bulk_status_url(bulk_id: str) -> str:
    return f"/api/v1/jobs/bulk/{bulk_id}/status"


@_enqueuing.post(
    "/api/v1/jobs/wallets/sync",
    summary="Queue a wallet sync",
    body=SyncBody,
    responses={202: JobAccepted},
)
async def sync_wallet(request: Request, call: Call) -> Response:
    """One ``sync-wallet`` job; its id derives from the wallet and ``requestId`` (generated if
    not given), so the same request twice is one job (``deduplicated``)."""
    body: SyncBody = await read_json(request, SyncBody)
    rt = await runtime(call)
    require_queues(call, "write", [rt.queue(WALLET_OPERATIONS)])
    [wallet] = checked_wallets([body.wallet_address])
    request_id = body.request_id or new_request_id("sync")
    with invalid_job_as_400():
        # The id derives from the request: a job someone else put under it is not reused.
        [handle] = await streamq.enqueue_verified(
            rt.app,
            [
                streamq.EnqueueRequest(
                    name="sync-wallet",
                    payload=SyncWallet(
                        wallet=wallet,
                        request_id=request_id,
                        force=body.sync_options.force_refresh,
                        max_swaps=body.sync_options.max_swaps,
                    ),
                    id=sync_job_id(wallet, request_id),
                    priority=body.priority,
                    request_id=request_id,
                )
            ],
        )
    return json_response(
        accepted(JobAccepted, handle, request_id, deduplicated=handle.deduplicated), 202
    )


@_enqueuing.post(
    "/api/v1/jobs/wallets/analyze",
    summary="Queue a bulk wallet analysis",
    body=AnalyzeBody,
    responses={202: BulkAccepted},
)
async def analyze_wallets(request: Request, call: Call) -> Response:
    """01's bulk flow: each wallet synced, then analysed for each of ``analysisTypes``; the
    bulk job completes if at least ``failureThreshold`` of the wallets succeeded. Watch
    ``monitoringUrl`` (per-wallet and per-type progress)."""
    body: AnalyzeBody = await read_json(request, AnalyzeBody)
    rt = await runtime(call)
    require_queues(call, "write", [rt.queue(ANALYSIS_OPERATIONS), rt.queue(WALLET_OPERATIONS)])
    wallets = checked_wallets(body.wallet_addresses)
    if not body.analysis_types:
        raise ApiError(
            422, "invalid_payload", "name at least one analysis type", path="$.analysisTypes"
        )
    req = BulkAnalysis(
        wallets=wallets,
        analysis_types=list(dict.fromkeys(body.analysis_types)),
        request_id=new_request_id("bulk"),
        failure_threshold=body.failure_threshold,
        force_refresh=body.force_refresh,
    )
    with invalid_job_as_400():
        handle = await start_bulk_analysis(rt, req, priority=body.priority)
    return json_response(
        BulkAccepted(
            bulk_job_id=handle.id,
            request_id=req.request_id,
            status=handle.state_at_enqueue or "waiting-children",
            queue_name=handle.queue,
            wallets=len(wallets),
            analysis_types=req.analysis_types,
            jobs=2 * len(bulk_members(req)),
            monitoring_url=bulk_status_url(handle.id),
            events_url=events_url(handle.queue, handle.id),
        ),
        202,
    )


@operation.get(
    "/api/v1/jobs/bulk/{bulkJobId}/status",
    summary="A bulk analysis: per-wallet and per-type progress",
    responses={200: BulkStatus},
    errors=(400, 404),
)
async def bulk_status(request: Request, call: Call) -> Response:
    rt = await runtime(call)
    require_queues(call, "read", [rt.queue(ANALYSIS_OPERATIONS), rt.queue(WALLET_OPERATIONS)])
    bulk_id = checked_job_id(request.path_params["bulkJobId"])
    parent = await rt.app.job(rt.queue(ANALYSIS_OPERATIONS), bulk_id)
    if parent is None or parent.name != "bulk-analysis":
        raise ApiError(404, "job_not_found", f"no bulk job {bulk_id!r} (never queued, or expired)")
    req = msgspec.convert(parent.payload, BulkAnalysis)
    return json_response(await _status(rt, parent, req))


async def _states(rt: Runtime, members: list[BulkMember]) -> dict[str, str]:
    """The state of every analysis and sync of the flow, by job id."""
    analysis, wallet_ops = rt.queue(ANALYSIS_OPERATIONS), rt.queue(WALLET_OPERATIONS)
    out: dict[str, str] = {}
    limiter = anyio.CapacityLimiter(20)

    async def read(queue: str, job_id: str) -> None:
        async with limiter:
            job = await rt.app.job(queue, job_id)
        out[job_id] = job.state if job is not None else "missing"

    async with anyio.create_task_group() as tg:
        for m in members:
            tg.start_soon(read, analysis, m.analysis_id)
            tg.start_soon(read, wallet_ops, m.sync_id)
    return out


async def _status(rt: Runtime, parent: streamq.Job, req: BulkAnalysis) -> BulkStatus:
    members = bulk_members(req)
    states = await _states(rt, members)
    wallets: dict[str, BulkWalletProgress] = {}
    types: dict[str, dict[str, int]] = {
        t: {"total": 0, "completed": 0, "failed": 0, "running": 0, "waiting": 0}
        for t in req.analysis_types
    }
    for w in dict.fromkeys(req.wallets):
        mine = [m for m in members if m.wallet == w]
        analyses: dict[str, str] = {m.kind: states[m.analysis_id] for m in mine}
        syncs: dict[str, str] = {m.kind: states[m.sync_id] for m in mine}
        for kind, state in analyses.items():
            bucket = _bucket(state, syncs[kind])
            types[kind]["total"] += 1
            types[kind][bucket] += 1
        buckets = {_bucket(analyses[k], syncs[k]) for k in analyses}
        overall: WalletState = (
            "failed"
            if "failed" in buckets
            else "completed"
            if buckets == {"completed"}
            else "running"
            if buckets & {"running", "completed"}
            else "waiting"
        )
        wallets[w] = BulkWalletProgress(state=overall, sync=syncs, analyses=analyses)
    finished = sum(1 for s in states.values() if s in streamq.TERMINAL_STATES or s == "missing")
    finished += parent.finished
    return BulkStatus(
        bulk_job_id=parent.id,
        request_id=parent.request_id,
        state=parent.state,
        progress=round(100.0 * finished / (len(states) + 1), 1),
        failure_threshold=req.failure_threshold,
        wallets=wallets,
        types={t: BulkTypeProgress(**c) for t, c in types.items()},
        result=parent.result,
        error=parent.error,
        events_url=events_url(parent.queue, parent.id),
    )


def _bucket(analysis: str, sync: str) -> str:
    """One analysis (with the sync it waits for) as waiting, running, completed or failed."""
    if analysis == "completed":
        return "completed"
    if analysis in _FAILED or sync in _FAILED:
        return "failed"
    if analysis == "active" or sync in {"active", "completed", "retrying"}:
        return "running"
    return "waiting"
