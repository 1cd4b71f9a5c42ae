"""01's bulk analysis (``createBulkAnalysisFlow``) as one streamq flow:

    bulk-analysis                          (analysis-operations; policy "ignore")
    ├── analyze-pnl       W1  ── sync-wallet W1   (wallet-operations)
    ├── analyze-behavior  W1  ── sync-wallet W1
    ├── analyze-pnl       W2  ── sync-wallet W2
    └── ...

Each analysis is the parent of its wallet's sync (the plan's intent: analyse what was just
synced; a flow parent runs after its children), with policy ``fail``, so a wallet whose sync
failed for good fails its analyses without running them. A job has one parent, so each
analysis has its own sync; the second sync of a wallet finds it current and fetches nothing
(01's idempotency check). The bulk parent runs once every analysis has ended and applies the
partial-failure threshold to wallets (a wallet succeeds when all its analyses completed).
"""

from __future__ import annotations

import streamq
from processors.config import ANALYSIS_OPERATIONS, WALLET_OPERATIONS
from processors.ids import analysis_job_id, bulk_job_id, sync_job_id
from processors.jobs.types import AnalysisType, AnalyzeWallet, BulkAnalysis, BulkOutcome, SyncWallet
from processors.runtime import Runtime
from processors.solana import validate_addresses

__all__ = ["BulkMember", "bulk_job", "bulk_members", "start_bulk_analysis"]


class BulkMember:
    """One analysis of one wallet in a bulk flow, and the sync it waits for."""

    __slots__ = ("analysis_id", "kind", "sync_id", "wallet")

    def __init__(self, wallet: str, kind: AnalysisType, request_id: str) -> None:
        self.wallet = wallet
        self.kind = kind
        self.sync_id = sync_job_id(wallet, f"{request_id}:{kind}")
        self.analysis_id = analysis_job_id(kind, wallet, self.sync_id)


def bulk_members(req: BulkAnalysis) -> list[BulkMember]:
    """Every analysis of the flow, by wallet then type (ids derive from the request)."""
    kinds = list(dict.fromkeys(req.analysis_types))
    return [BulkMember(w, k, req.request_id) for w in dict.fromkeys(req.wallets) for k in kinds]


async def start_bulk_analysis(
    rt: Runtime, req: BulkAnalysis, *, priority: int | None = None
) -> streamq.JobHandle:
    """Enqueues the whole flow at once; returns the bulk parent's handle. Raises
    InvalidWalletAddress, streamq.InvalidJob."""
    validate_addresses(req.wallets)
    analysis, wallet_ops = rt.queue(ANALYSIS_OPERATIONS), rt.queue(WALLET_OPERATIONS)
    children = [
        streamq.Flow(
            name=f"analyze-{m.kind}",
            payload=AnalyzeWallet(wallet=m.wallet, depends_on_sync=m.sync_id),
            id=m.analysis_id,
            queue=analysis,
            priority=priority,
            policy="fail",
            request_id=req.request_id,
            children=[
                streamq.Flow(
                    name="sync-wallet",
                    payload=SyncWallet(
                        wallet=m.wallet,
                        request_id=f"{req.request_id}:{m.kind}",
                        force=req.force_refresh,
                    ),
                    id=m.sync_id,
                    queue=wallet_ops,
                    priority=priority,
                    request_id=req.request_id,
                )
            ],
        )
        for m in bulk_members(req)
    ]
    root = streamq.Flow(
        name="bulk-analysis",
        payload=req,
        id=bulk_job_id(req.wallets, req.analysis_types, req.request_id),
        queue=analysis,
        priority=priority,
        policy="ignore",
        request_id=req.request_id,
        children=children,
    )
    return await rt.app.enqueue_flow(root)


async def bulk_job(ctx: streamq.Context, req: BulkAnalysis) -> BulkOutcome:
    """``bulk-analysis``: the flow's parent. Completes with the per-wallet outcome when at least
    ``failure_threshold`` of the wallets succeeded; else fails for good (``streamq.Fatal``)."""
    members = {m.analysis_id: m for m in bulk_members(req)}
    wallets = list(dict.fromkeys(req.wallets))
    failed: dict[str, str] = {}
    for child in await ctx.children():
        m = members.get(child.id)
        if m is not None and child.state != "completed":
            failed.setdefault(m.wallet, f"{child.name}: {child.error or child.state}")
    succeeded = [w for w in wallets if w not in failed]
    rate = len(succeeded) / len(wallets) if wallets else 0.0
    await ctx.progress(100, f"{len(succeeded)} of {len(wallets)} wallets analysed")
    if rate < req.failure_threshold:
        raise streamq.Fatal(
            f"only {len(succeeded)} of {len(wallets)} wallets succeeded ({rate:.0%}), "
            f"below the threshold of {req.failure_threshold:.0%}: "
            + "; ".join(f"{w}: {e}" for w, e in failed.items())
        )
    return BulkOutcome(
        request_id=req.request_id,
        requested_wallets=len(wallets),
        succeeded_wallets=succeeded,
        failed_wallets=failed,
        success_rate=rate,
        failure_threshold=req.failure_threshold,
    )
