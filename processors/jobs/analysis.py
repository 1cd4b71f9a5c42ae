"""``analysis-operations``: ``analyze-pnl``, ``analyze-behavior``, ``dashboard-wallet-analysis``
(02) and ``analyze-similarity``, the parent of the advanced similarity flow (03/04)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import anyio
import msgspec

import streamq
from processors.analysis.behavior import BehaviorMetrics
from processors.analysis.enrichment import EnrichedWallet
from processors.analysis.pnl import PnlReport
from processors.analysis.similarity import VectorType
from processors.config import (
    ANALYSIS_OPERATIONS,
    ENRICHMENT_OPERATIONS,
    LOCKS,
    SIMILARITY,
    WALLET_OPERATIONS,
)
from processors.ids import (
    balances_job_id,
    dashboard_job_id,
    enrichment_job_id,
    similarity_job_id,
    sync_job_id,
)
from processors.jobs.coordination import enqueue_flow, wallet_lock
from processors.jobs.results import remember_request_job
from processors.jobs.signals import mapped_errors
from processors.jobs.types import (
    AnalyzeWallet,
    DashboardOutcome,
    DashboardRequest,
    EnrichBalances,
    FetchBalances,
    SimilarityOutcome,
    SimilarityRequest,
    SyncWallet,
)
from processors.jobs.wallet_claims import Running, claim_wallet, set_wallet_claim
from processors.jobs.wallet_index import index_wallet_job
from processors.models import WalletBalances
from processors.providers.base import TokenDataProvider
from processors.runtime import Runtime, runtime_of
from processors.services.wallet import (
    analyze_wallet_behavior,
    analyze_wallet_pnl,
    dashboard_analysis,
    similarity_of,
    wallets_needing_sync,
)
from processors.solana import validate_address, validate_addresses
from processors.store import Store

__all__ = [
    "DashboardStart",
    "IfRunning",
    "analyze_behavior_job",
    "analyze_pnl_job",
    "dashboard_job",
    "enrichment_request",
    "similarity_children",
    "similarity_job",
    "start_dashboard",
    "start_similarity_flow",
]

T = TypeVar("T")

log = logging.getLogger(__name__)

# What a dashboard request does while another analysis of the wallet is unfinished: answer at
# once with that one ("reject", the plans' HTTP behaviour), or queue behind it ("queue").
IfRunning = Literal["reject", "queue"]


# -- producers (the routes and the demo start these) -------------------------------------------


def similarity_children(rt: Runtime, req: SimilarityRequest) -> list[streamq.EnqueueRequest]:
    """04's parallel I/O: a deep sync of each wallet that needs one ∥ every wallet's balances.

    Child ids derive from the request, so the parent (or a retry of it) finds the same jobs.
    """
    tag = hashlib.md5(req.request_id.encode(), usedforsecurity=False).hexdigest()[:8]
    syncs = [
        streamq.EnqueueRequest(
            name="sync-wallet",
            payload=SyncWallet(wallet=w, request_id=req.request_id, deep=True),
            id=sync_job_id(w, req.request_id),
            queue=rt.queue(WALLET_OPERATIONS),
            request_id=req.request_id,
        )
        for w in dict.fromkeys(req.wallets_needing_sync)
    ]
    balances = [
        streamq.EnqueueRequest(
            name="fetch-balances",
            payload=FetchBalances(wallet=w),
            id=f"{balances_job_id(w)}:{tag}",
            queue=rt.queue(WALLET_OPERATIONS),
            request_id=req.request_id,
        )
        for w in dict.fromkeys(req.wallets)
    ]
    return [*syncs, *balances]


@dataclass(frozen=True)
class DashboardStart:
    """What ``start_dashboard`` did: queued ``handle`` (and its ``enrichment`` job), or found
    the wallet held by ``running`` and queued nothing."""

    needs_sync: bool
    handle: streamq.JobHandle | None = None
    enrichment: streamq.JobHandle | None = None
    running: Running | None = None


async def start_dashboard(
    rt: Runtime,
    wallet: str,
    *,
    request_id: str,
    force: bool = False,
    enrich: bool = True,
    if_running: IfRunning = "queue",
) -> DashboardStart:
    """Enqueues 02's dashboard job (id per wallet and request) and, beside it, its token
    enrichment (03: both fired at once). With ``if_running="reject"`` nothing is queued while
    another dashboard analysis of the wallet is unfinished (``running`` names it); with
    ``"queue"`` the new job waits for the wallet's lock. Raises InvalidWalletAddress."""
    validate_address(wallet)
    needs = bool(await wallets_needing_sync(rt.store, [wallet])) or force
    queue = rt.queue(ANALYSIS_OPERATIONS)
    job_id = dashboard_job_id(wallet, request_id)
    if if_running == "reject":
        running = await claim_wallet(rt, wallet, queue, job_id)
        if running is not None:
            return DashboardStart(needs_sync=needs, running=running)
    else:
        await set_wallet_claim(rt, wallet, queue, job_id)
    requests = [
        streamq.EnqueueRequest(
            name="dashboard-wallet-analysis",
            payload=DashboardRequest(
                wallet=wallet, request_id=request_id, force_refresh=force, enrich_metadata=enrich
            ),
            id=job_id,
            request_id=request_id,
        )
    ]
    if enrich:
        requests.append(enrichment_request(rt, [wallet], request_id))
    # Ids derive from the request: a job someone else put under one is refused, not reused.
    handles = await streamq.enqueue_verified(rt.app, requests)
    await index_wallet_job(rt, wallet, handles[0].queue, handles[0].id)
    await remember_request_job(rt, request_id, "dashboard", handles[0].queue, handles[0].id)
    return DashboardStart(
        needs_sync=needs, handle=handles[0], enrichment=handles[1] if enrich else None
    )


def enrichment_request(
    rt: Runtime,
    wallets: list[str],
    request_id: str,
    balances: dict[str, WalletBalances] | None = None,
) -> streamq.EnqueueRequest:
    """The request's ``enrich-token-balances`` job (one per wallet set and request)."""
    return streamq.EnqueueRequest(
        name="enrich-token-balances",
        payload=EnrichBalances(wallets=wallets, request_id=request_id, balances=balances),
        id=enrichment_job_id(wallets, request_id),
        queue=rt.queue(ENRICHMENT_OPERATIONS),
        request_id=request_id,
    )


async def start_similarity_flow(
    rt: Runtime,
    wallets: list[str],
    *,
    request_id: str,
    vector_type: VectorType = "capital",
    failure_threshold: float = SIMILARITY.failure_threshold,
    force_sync: bool = False,
) -> tuple[streamq.JobHandle, list[str]]:
    """Enqueues 04's flow; returns the parent's handle and the wallets it deep-syncs (the STALE
    or MISSING ones, decided once, here). Raises InvalidWalletAddress."""
    wallets = validate_addresses(dict.fromkeys(wallets))
    needing = wallets if force_sync else await wallets_needing_sync(rt.store, wallets)
    req = SimilarityRequest(
        wallets=wallets,
        request_id=request_id,
        vector_type=vector_type,
        failure_threshold=failure_threshold,
        wallets_needing_sync=needing,
    )
    parent = streamq.EnqueueRequest(
        name="analyze-similarity",
        payload=req,
        id=similarity_job_id(wallets, request_id),
        request_id=request_id,
    )
    handle = await enqueue_flow(rt, parent, similarity_children(rt, req))
    for w in wallets:
        await index_wallet_job(rt, w, handle.queue, handle.id)
    await remember_request_job(rt, request_id, "similarity", handle.queue, handle.id)
    return handle, needing


# -- handlers ----------------------------------------------------------------------------------


async def _under_wallet_lock(
    ctx: streamq.Context,
    wallet: str,
    analyze: Callable[[Store, TokenDataProvider, str], Awaitable[T]],
) -> T:
    """One analysis of ``wallet`` from its stored swaps, under the wallet's lock."""
    rt = runtime_of(ctx.app)
    with mapped_errors():
        validate_address(wallet)
        async with wallet_lock(rt, wallet, ttl=LOCKS.sync_wallet_ttl):
            return await analyze(rt.store, rt.providers.tokens, wallet)


async def analyze_pnl_job(ctx: streamq.Context, req: AnalyzeWallet) -> PnlReport:
    """``analyze-pnl``: the wallet's PnL per token from its stored swaps, under its lock."""
    return await _under_wallet_lock(ctx, req.wallet, analyze_wallet_pnl)


async def analyze_behavior_job(ctx: streamq.Context, req: AnalyzeWallet) -> BehaviorMetrics:
    """``analyze-behavior``: the wallet's trading behaviour, under its lock."""
    return await _under_wallet_lock(ctx, req.wallet, analyze_wallet_behavior)


async def dashboard_job(ctx: streamq.Context, req: DashboardRequest) -> DashboardOutcome:
    """``dashboard-wallet-analysis`` (02): lock the wallet, sync only if STALE/MISSING (or
    forced), PnL, then behaviour; the enrichment job starts first and runs alongside."""
    rt = runtime_of(ctx.app)
    started = time.monotonic()
    with mapped_errors():
        validate_address(req.wallet)
    await ctx.progress(5, "starting")
    enrichment: streamq.JobHandle | None = None
    if req.enrich_metadata:
        # Started with this job by start_dashboard; enqueued here too (the same id: one job)
        # for a dashboard job enqueued by other means.
        [enrichment] = await streamq.enqueue_verified(
            rt.app, [enrichment_request(rt, [req.wallet], req.request_id)]
        )

    async def progress(pct: float, message: str) -> None:
        await ctx.progress(pct, message)
        if pct == 40:
            await ctx.progress(50, "analysing PnL")

    with mapped_errors():
        async with wallet_lock(rt, req.wallet, ttl=LOCKS.dashboard_ttl):
            locked_at = time.time()
            result = await dashboard_analysis(
                rt.store,
                rt.providers,
                req.wallet,
                force_refresh=req.force_refresh,
                progress=progress,
            )
            released_at = time.time()
    done: dict[str, EnrichedWallet] | None = None
    if enrichment is not None:
        await ctx.progress(85, "token enrichment running alongside")
        job = await enrichment.info()
        if job is not None and job.state == "completed":
            done = msgspec.convert(job.result, dict[str, EnrichedWallet])
    await ctx.progress(100, "done")
    # The analysis of req.wallet, with what the job adds (its time includes the lock's wait).
    return DashboardOutcome(
        **{**msgspec.structs.asdict(result), "processing_seconds": time.monotonic() - started},
        success=True,
        request_id=req.request_id,
        enrichment_job_id=enrichment.id if enrichment else None,
        enrichment_queue=enrichment.queue if enrichment else None,
        enrichment=done,
        locked_at=locked_at,
        released_at=released_at,
    )


async def similarity_job(ctx: streamq.Context, req: SimilarityRequest) -> SimilarityOutcome:
    """``analyze-similarity``, 04's flow parent: after deep syncs ∥ balance fetches, similarity
    ∥ enrichment over the wallets that made it (at least ``failure_threshold`` of them, and
    two)."""
    rt = runtime_of(ctx.app)
    with mapped_errors():
        wallets = validate_addresses(dict.fromkeys(req.wallets))
    # The broker ran this parent once its children (deep syncs ∥ balance fetches) ended.
    children = await ctx.children()
    await ctx.progress(60, f"{len(children)} sync and balance jobs done")
    wallet_of = {c.id: c.payload.wallet for c in similarity_children(rt, req)}
    failed: dict[str, str] = {}
    balances: dict[str, WalletBalances] = {}
    children_seconds = 0.0
    for o in children:
        wallet = wallet_of.get(o.id)
        if wallet is None:
            continue
        if o.state != "completed":
            failed.setdefault(wallet, f"{o.name}: {o.error or o.state}")
        elif o.name == "fetch-balances":
            balances[wallet] = msgspec.convert(o.result, WalletBalances)
        info = await ctx.app.job(rt.queue(WALLET_OPERATIONS), o.id)
        if info is not None and info.started_at and info.finished_at:
            children_seconds += info.finished_at - info.started_at
    enrichment = await ctx.enqueue(
        "enrich-token-balances",
        EnrichBalances(
            wallets=[w for w in wallets if w in balances],
            request_id=req.request_id,
            balances=balances,
        ),
        id=enrichment_job_id(wallets, req.request_id),
        queue=rt.queue(ENRICHMENT_OPERATIONS),
    )
    with mapped_errors():
        result = await similarity_of(
            rt.store,
            rt.providers,
            wallets,
            balances=balances,
            failed=failed,
            request_id=req.request_id,
            vector_type=req.vector_type,
            failure_threshold=req.failure_threshold,
        )
    await ctx.progress(90, "similarity done")
    enriched: dict[str, EnrichedWallet] | None = None
    with anyio.move_on_after(rt.settings.enrichment_wait):
        job = await enrichment.wait(timeout=None)
        if job.state == "completed":
            enriched = msgspec.convert(job.result, dict[str, EnrichedWallet])
    await ctx.progress(100, "done")
    synced = [w for w in req.wallets_needing_sync if w not in failed]
    # The flow's result (made under req.request_id), with what the job adds.
    return SimilarityOutcome(
        **msgspec.structs.asdict(result),
        synced_wallets=synced,
        enrichment_job_id=enrichment.id,
        enrichment=enriched,
        children_seconds=children_seconds,
    )
