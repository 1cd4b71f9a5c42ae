"""Payloads and results of the processors' jobs (msgspec Structs: what enqueue validates and
what a job's result decodes to). New fields get defaults, so older workers read newer jobs."""

from __future__ import annotations

from typing import Literal

import msgspec

from processors.analysis.behavior import BehaviorMetrics
from processors.analysis.enrichment import EnrichedWallet
from processors.analysis.pnl import PnlReport
from processors.analysis.polymarket import AnomalyScore
from processors.analysis.similarity import SimilarityResult, VectorType
from processors.config import SIMILARITY
from processors.models import WalletBalances
from processors.services.wallet import SyncResult

__all__ = [
    "AlertOutcome",
    "AnalysisType",
    "AnalyzeTrade",
    "AnalyzeWallet",
    "AnomalyBatch",
    "BatchOutcome",
    "BulkAnalysis",
    "BulkOutcome",
    "CleanupOutcome",
    "DashboardOutcome",
    "DashboardRequest",
    "EnrichBalances",
    "FetchBalances",
    "Maintenance",
    "RefreshOutcome",
    "SendAlert",
    "SimilarityOutcome",
    "SimilarityRequest",
    "SyncWallet",
    "UpdateWhales",
    "WhalesOutcome",
]


class SyncWallet(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    request_id: str = "default"
    force: bool = False
    # None: no cap, except the plans' signature cap for wallets known to be high-frequency.
    max_swaps: int | None = None
    # The similarity flow's deep sync: PnL and behaviour are brought up to date as well.
    deep: bool = False


class FetchBalances(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str


class AnalyzeWallet(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    depends_on_sync: str | None = None


class DashboardRequest(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    request_id: str
    force_refresh: bool = False
    enrich_metadata: bool = True


class DashboardOutcome(msgspec.Struct, frozen=True, kw_only=True):
    success: bool
    wallet: str
    request_id: str
    synced: bool
    sync: SyncResult | None
    pnl: PnlReport
    behavior: BehaviorMetrics
    enrichment_job_id: str | None
    enrichment_queue: str | None
    enrichment: dict[str, EnrichedWallet] | None  # present when it finished alongside
    locked_at: float  # when the wallet lock was taken and released (epoch seconds)
    released_at: float
    processing_seconds: float


AnalysisType = Literal["pnl", "behavior"]


class BulkAnalysis(msgspec.Struct, frozen=True, kw_only=True):
    """01's ``BulkWalletAnalysisData``: each wallet synced, then analysed for each type."""

    wallets: list[str]
    analysis_types: list[AnalysisType]
    request_id: str
    failure_threshold: float = SIMILARITY.failure_threshold
    force_refresh: bool = False


class BulkOutcome(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    requested_wallets: int
    succeeded_wallets: list[str]  # every analysis of the wallet completed
    failed_wallets: dict[str, str]  # wallet -> the first failure seen
    success_rate: float
    failure_threshold: float


class SimilarityRequest(msgspec.Struct, frozen=True, kw_only=True):
    wallets: list[str]
    request_id: str
    vector_type: VectorType = "capital"
    failure_threshold: float = SIMILARITY.failure_threshold
    wallets_needing_sync: list[str] = msgspec.field(default_factory=list)


class SimilarityOutcome(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    similarity: SimilarityResult
    requested_wallets: int
    processed_wallets: int
    failed_wallets: dict[str, str]
    success_rate: float
    synced_wallets: list[str]
    balances: dict[str, WalletBalances]
    enrichment_job_id: str | None
    enrichment: dict[str, EnrichedWallet] | None
    children_seconds: float  # the summed run time of the children (for the benchmark)


class EnrichBalances(msgspec.Struct, frozen=True, kw_only=True):
    wallets: list[str]
    request_id: str
    balances: dict[str, WalletBalances] | None = None  # None: from the balance cache


class Maintenance(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of the maintenance schedules (empty on a tick)."""

    now: int | None = None  # the clock the run judges ages by (None: now)


class CleanupOutcome(msgspec.Struct, frozen=True, kw_only=True):
    similarity_results: int  # removed: older than CACHE.results_ttl
    token_infos: int  # removed: not fetched for CACHE.token_info_retention


class RefreshOutcome(msgspec.Struct, frozen=True, kw_only=True):
    stale: int  # stored token records older than CACHE.token_info_max_age
    refreshed: int  # of those, fetched again


class UpdateWhales(msgspec.Struct, frozen=True, kw_only=True):
    top: int = 50


class WhalesOutcome(msgspec.Struct, frozen=True, kw_only=True):
    whales: list[str]


class AnomalyBatch(msgspec.Struct, frozen=True, kw_only=True):
    since: int | None = None  # None: from where the last batch stopped
    until: int | None = None


class BatchOutcome(msgspec.Struct, frozen=True, kw_only=True):
    ingested: int
    checked: int
    detected: int
    anomalies: list[str]  # trade ids
    alerts: list[str]  # alert ids enqueued for delivery


class AnalyzeTrade(msgspec.Struct, frozen=True, kw_only=True):
    trade_id: str


class SendAlert(msgspec.Struct, frozen=True, kw_only=True):
    alert_id: str


class AlertOutcome(msgspec.Struct, frozen=True, kw_only=True):
    alert_id: str
    status: Literal["sent", "already-sent"]


AnomalyResult = AnomalyScore
