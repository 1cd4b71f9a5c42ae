"""The application's analysis endpoints (02, 03, 04), declared as server Operations so they get
the server's auth, rate limits, error envelope and OpenAPI entries.

- ``POST /api/v1/analyses/wallets/dashboard-analysis``: 202 with the job to watch;
- ``POST /api/v1/analyses/similarity``: the quick, synchronous similarity over stored data;
- ``POST /api/v1/analyses/similarity/queue``: the advanced similarity flow, 202;
- ``GET /api/v1/analyses/wallets/status``: FRESH / STALE / MISSING per wallet;
- ``POST /api/v1/analyses/wallets/trigger-analysis``: deprecated, one dashboard job per wallet;
- ``GET /api/v1/wallets/{address}/summary|pnl|behavior``: the stored results.

The job API and ``/health/queues`` are in ``processors.api.jobs``.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from processors.analysis.behavior import BehaviorMetrics
from processors.analysis.pnl import PnlReport
from processors.api.requests import (
    accepted,
    checked_wallets,
    enrichment_results_url,
    events_url,
    invalid_job_as_400,
    monitoring_url,
    new_request_id,
    require_queues,
    results_url,
    runtime,
)
from processors.api.schemas import (
    AnalysisInProgress,
    DashboardAccepted,
    DashboardBody,
    ErrorBody,
    SimilarityAccepted,
    SimilarityBody,
    TriggerBody,
    TriggerResult,
    WalletStatuses,
    WalletStatusView,
    WalletSummary,
)
from processors.config import (
    ANALYSIS_OPERATIONS,
    ENRICHMENT_OPERATIONS,
    SIMILARITY,
    SYNC,
    WALLET_OPERATIONS,
)
from processors.errors import InsufficientData, ProviderError
from processors.jobs.analysis import (
    DashboardStart,
    IfRunning,
    start_dashboard,
    start_similarity_flow,
)
from processors.jobs.wallet_claims import Running
from processors.runtime import Runtime
from processors.services.wallet import SimilarityFlowResult, similarity_flow
from processors.store import Store
from server import (
    ApiError,
    Call,
    OperationTable,
    Param,
    bound_handler,
    json_response,
    read_json,
)

__all__ = ["operation"]

TAGS = ("analyses",)
operation = OperationTable(tags=TAGS)
_writing = operation.preset(scope="write", errors=(400, 413, 422, 503))
# The handlers check the queues they enqueue on.
_enqueuing = _writing.preset(queue_filtered=True)


def _estimate(minutes: int) -> str:
    return f"{round(minutes / 60)} hour(s)" if minutes > 60 else f"{minutes} minute(s)"


async def enqueue_dashboard(
    rt: Runtime, wallet: str, *, force: bool, enrich: bool, if_running: IfRunning
) -> tuple[DashboardStart, str]:
    request_id = new_request_id("dashboard")
    with invalid_job_as_400():
        started = await start_dashboard(
            rt, wallet, request_id=request_id, force=force, enrich=enrich, if_running=if_running
        )
    return started, request_id


def in_progress(wallet: str, running: Running) -> Response:
    """409 naming the analysis that holds the wallet (02: "already in progress")."""
    return json_response(
        AnalysisInProgress(
            error=ErrorBody(
                code="analysis_in_progress",
                message=f"an analysis of {wallet} is already {running.state}: watch job "
                f"{running.job_id}, or ask again with ifRunning=queue to queue another",
            ),
            job_id=running.job_id,
            request_id=running.request_id,
            status=running.state,
            queue_name=running.queue,
            monitoring_url=monitoring_url(running.job_id),
            events_url=events_url(running.queue, running.job_id),
        ),
        409,
    )


@_enqueuing.post(
    "/api/v1/analyses/wallets/dashboard-analysis",
    summary="Queue a dashboard wallet analysis",
    body=DashboardBody,
    responses={202: DashboardAccepted, 409: AnalysisInProgress},
)
async def dashboard_analysis(request: Request, call: Call) -> Response:
    """Syncs the wallet only if STALE/MISSING (or ``forceRefresh``), then PnL and behaviour;
    token enrichment runs alongside (its job in ``enrichmentJobId``, its results as they come
    at ``enrichmentResultsUrl``). Watch ``monitoringUrl`` or the job's SSE ``eventsUrl``.

    While another analysis of the wallet is unfinished the answer is 409 with that job's id and
    monitoring URL; ``ifRunning: "queue"`` queues a new job behind it instead."""
    body: DashboardBody = await read_json(request, DashboardBody)
    rt = await runtime(call)
    enriching = [ENRICHMENT_OPERATIONS] if body.enrich_metadata else []
    require_queues(call, "write", [rt.queue(q) for q in [ANALYSIS_OPERATIONS, *enriching]])
    [wallet] = checked_wallets([body.wallet_address])
    started, request_id = await enqueue_dashboard(
        rt,
        wallet,
        force=body.force_refresh,
        enrich=body.enrich_metadata,
        if_running=body.if_running,
    )
    if started.running is not None:
        return in_progress(wallet, started.running)
    handle, enrichment = started.handle, started.enrichment
    assert handle is not None
    return json_response(
        accepted(
            DashboardAccepted,
            handle,
            request_id,
            estimated_processing_time=_estimate(3 + (10 if started.needs_sync else 0)),
            deduplicated=handle.deduplicated,
            enrichment_job_id=enrichment.id if enrichment else None,
            enrichment_results_url=enrichment_results_url(enrichment.id) if enrichment else None,
            results_url=results_url(request_id),
        ),
        202,
    )


@_writing.post(
    "/api/v1/analyses/similarity",
    summary="Quick wallet similarity (synchronous)",
    # Computed in the request: many wallets take longer than the Redis deadline allows.
    bounded=False,
    body=SimilarityBody,
    responses={200: SimilarityFlowResult},
)
async def quick_similarity(request: Request, call: Call) -> Response:
    """Similarity over the wallets' stored history and their current balances, computed in the
    request (01's "Pipeline 1"); wallets never synced have no history to compare."""
    body: SimilarityBody = await read_json(request, SimilarityBody)
    rt = await runtime(call)
    wallets = checked_wallets(body.wallet_addresses, at_least=SIMILARITY.min_wallets)
    try:
        result = await similarity_flow(
            rt.store,
            rt.providers,
            wallets,
            request_id=new_request_id("similarity"),
            vector_type=body.vector_type,
            failure_threshold=body.failure_threshold,
        )
    except InsufficientData as exc:
        raise ApiError(422, "insufficient_data", str(exc)) from None
    except ProviderError as exc:
        raise ApiError(503, "provider_unavailable", str(exc)) from None
    return json_response(result)


# 04's flow, also under 01's job API name.
_similarity_flow = _enqueuing.preset(body=SimilarityBody, responses={202: SimilarityAccepted})


@_similarity_flow.post(
    "/api/v1/analyses/similarity/queue", summary="Queue the advanced similarity flow"
)
async def queue_similarity(request: Request, call: Call) -> Response:
    """04's flow: deep sync of the wallets that need it ∥ balances, then similarity ∥
    enrichment; runs if at least ``failureThreshold`` of the wallets (and two) make it."""
    body: SimilarityBody = await read_json(request, SimilarityBody)
    rt = await runtime(call)
    flow = (ANALYSIS_OPERATIONS, WALLET_OPERATIONS, ENRICHMENT_OPERATIONS)
    require_queues(call, "write", [rt.queue(q) for q in flow])
    wallets = checked_wallets(body.wallet_addresses, at_least=SIMILARITY.min_wallets)
    if not 0.0 < body.failure_threshold <= 1.0:
        raise ApiError(
            422, "invalid_payload", "failureThreshold must be in (0, 1]", path="$.failureThreshold"
        )
    request_id = new_request_id("similarity")
    with invalid_job_as_400():
        handle, needing = await start_similarity_flow(
            rt,
            wallets,
            request_id=request_id,
            vector_type=body.vector_type,
            failure_threshold=body.failure_threshold,
            force_sync=body.force_sync,
        )
    minutes = 2 + (10 if needing else 0)
    return json_response(
        accepted(
            SimilarityAccepted,
            handle,
            request_id,
            wallets_needing_sync=needing,
            estimated_processing_time=_estimate(minutes),
        ),
        202,
    )


_similarity_flow.post(
    "/api/v1/jobs/similarity/analyze",
    summary="Queue the advanced similarity flow (01's job API)",
    tags=("application jobs",),
)(
    bound_handler(
        queue_similarity,
        "jobs_similarity_analyze",
        "01's name for ``POST /api/v1/analyses/similarity/queue``: the same flow and answer.",
    )
)


@operation.get(
    "/api/v1/analyses/wallets/status",
    summary="Sync status of wallets (FRESH, STALE, MISSING)",
    responses={200: WalletStatuses},
    errors=(400,),
    params=(
        Param(
            "walletAddresses",
            "query",
            {"type": "string"},
            "comma-separated addresses (the parameter may also repeat)",
            required=True,
        ),
    ),
)
async def wallet_status(request: Request, call: Call) -> Response:
    """FRESH if synced within the freshness window, STALE if earlier, MISSING if never."""
    raw = [
        a.strip()
        for v in request.query_params.getlist("walletAddresses")
        for a in v.split(",")
        if a.strip()
    ]
    rt = await runtime(call)
    wallets = checked_wallets(raw)
    statuses = await anyio.to_thread.run_sync(
        lambda: rt.store.wallet_statuses(wallets, fresh_for=SYNC.fresh_for)
    )
    return json_response(
        WalletStatuses(
            statuses=[
                WalletStatusView(
                    wallet_address=s.address,
                    status=s.status,
                    last_synced_at=s.last_synced_at,
                    swap_count=s.swap_count,
                )
                for s in statuses
            ]
        )
    )


@_enqueuing.post(
    "/api/v1/analyses/wallets/trigger-analysis",
    summary="Deprecated: trigger analyses (use dashboard-analysis)",
    body=TriggerBody,
    responses={202: TriggerResult},
)
async def trigger_analysis(request: Request, call: Call) -> Response:
    """Kept working for old clients (02): queues a dashboard analysis per wallet, skipping
    wallets with one already running. Answers with ``Deprecation: true``."""
    body: TriggerBody = await read_json(request, TriggerBody)
    rt = await runtime(call)
    require_queues(call, "write", [rt.queue(ANALYSIS_OPERATIONS), rt.queue(ENRICHMENT_OPERATIONS)])
    wallets = checked_wallets(body.wallet_addresses)
    triggered: list[str] = []
    skipped: list[str] = []
    ids: dict[str, str] = {}
    for w in wallets:
        started, _ = await enqueue_dashboard(rt, w, force=False, enrich=True, if_running="reject")
        if started.running is not None:
            skipped.append(w)
            ids[w] = started.running.job_id
            continue
        assert started.handle is not None
        triggered.append(w)
        ids[w] = started.handle.id
    message = (
        f"Analysis for {len(triggered)} wallet(s) has been triggered successfully. "
        f"{len(skipped)} were skipped as they were already in progress."
    )
    response = json_response(
        TriggerResult(
            message=message, triggered_analyses=triggered, skipped_analyses=skipped, job_ids=ids
        ),
        202,
    )
    response.headers["Deprecation"] = "true"
    response.headers["Link"] = (
        '</api/v1/analyses/wallets/dashboard-analysis>; rel="successor-version"'
    )
    return response


async def _wallet(call: Call, request: Request) -> tuple[Runtime, str]:
    rt = await runtime(call)
    [wallet] = checked_wallets([request.path_params["address"]])
    return rt, wallet


async def _stored(
    request: Request, call: Call, read: Callable[[Store, str], object | None], analysis: str
) -> Response:
    """The wallet's stored ``analysis`` result, or 404 ``not_analyzed``."""
    rt, wallet = await _wallet(call, request)
    result = await anyio.to_thread.run_sync(read, rt.store, wallet)
    if result is None:
        raise ApiError(404, "not_analyzed", f"no {analysis} analysis of {wallet} yet")
    return json_response(result)


@operation.get(
    "/api/v1/wallets/{address}/summary",
    summary="A wallet's sync status and results",
    responses={200: WalletSummary},
    errors=(400,),
    tags=("wallets",),
)
async def wallet_summary(request: Request, call: Call) -> Response:
    rt, wallet = await _wallet(call, request)
    store = rt.store
    [status] = await anyio.to_thread.run_sync(
        lambda: store.wallet_statuses([wallet], fresh_for=SYNC.fresh_for)
    )
    pnl = await anyio.to_thread.run_sync(store.pnl, wallet)
    behavior = await anyio.to_thread.run_sync(store.behavior, wallet)
    return json_response(
        WalletSummary(
            wallet_address=wallet,
            status=status.status,
            last_synced_at=status.last_synced_at,
            swap_count=status.swap_count,
            pnl=pnl.stats if pnl else None,
            behavior=behavior,
        )
    )


_stored_result = operation.preset(errors=(400, 404), tags=("wallets",))
_stored_result.get(
    "/api/v1/wallets/{address}/pnl", summary="A wallet's PnL report", responses={200: PnlReport}
)(bound_handler(_stored, "wallet_pnl", read=Store.pnl, analysis="PnL"))
_stored_result.get(
    "/api/v1/wallets/{address}/behavior",
    summary="A wallet's behaviour metrics",
    responses={200: BehaviorMetrics},
)(bound_handler(_stored, "wallet_behavior", read=Store.behavior, analysis="behaviour"))
