"""The JSON bodies of the application's endpoints, in the plans' camelCase."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from processors.analysis.behavior import BehaviorMetrics
from processors.analysis.pnl import PortfolioStats
from processors.analysis.similarity import VectorType
from processors.config import SIMILARITY
from processors.jobs.types import AnalysisType

# The plans' numeric priorities (10 critical .. 1 maintenance), mapped onto streamq's lanes.
PlanPriority = Annotated[int, msgspec.Meta(ge=1, le=10)]

__all__ = [
    "ActiveJobs",
    "AdminQueueStats",
    "AdminQueuesStats",
    "AnalysisInProgress",
    "AnalyzeBody",
    "BulkAccepted",
    "BulkStatus",
    "BulkTypeProgress",
    "BulkWalletProgress",
    "DashboardAccepted",
    "DashboardBody",
    "ErrorBody",
    "JobAccepted",
    "JobProgressView",
    "JobResultView",
    "JobStatusView",
    "MaintenanceList",
    "MaintenanceView",
    "PlanPriority",
    "QueueHealth",
    "QueuePaused",
    "QueuesHealth",
    "SimilarityAccepted",
    "SimilarityBody",
    "SyncBody",
    "SyncOptionsBody",
    "TriggerBody",
    "TriggerResult",
    "WalletStatusView",
    "WalletStatuses",
    "WalletSummary",
]


class DashboardBody(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    wallet_address: str
    force_refresh: bool = False
    enrich_metadata: bool = True
    # While another analysis of the wallet is unfinished: 409 naming it ("reject", the plans'
    # answer), or a new job queued behind it ("queue": it waits for the wallet's lock).
    if_running: Literal["reject", "queue"] = "reject"


class DashboardAccepted(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    job_id: str
    request_id: str
    status: str
    queue_name: str
    estimated_processing_time: str
    monitoring_url: str
    events_url: str
    deduplicated: bool = False
    enrichment_job_id: str | None = None  # the token enrichment running alongside
    enrichment_results_url: str | None = None  # its enriched batches as they come
    results_url: str | None = None  # everything of this request, by its id


class SimilarityBody(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    wallet_addresses: list[str]
    vector_type: VectorType = "capital"
    failure_threshold: float = SIMILARITY.failure_threshold
    force_sync: bool = False


class SimilarityAccepted(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    job_id: str
    request_id: str
    status: str
    queue_name: str
    wallets_needing_sync: list[str]
    estimated_processing_time: str
    monitoring_url: str
    events_url: str


class TriggerBody(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    wallet_addresses: list[str]


class TriggerResult(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    message: str
    triggered_analyses: list[str]
    skipped_analyses: list[str]
    job_ids: dict[str, str]


class WalletStatusView(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    wallet_address: str
    status: Literal["FRESH", "STALE", "MISSING"]
    last_synced_at: int | None
    swap_count: int


class WalletStatuses(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    statuses: list[WalletStatusView]


class WalletSummary(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    wallet_address: str
    status: Literal["FRESH", "STALE", "MISSING"]
    last_synced_at: int | None
    swap_count: int
    pnl: PortfolioStats | None
    behavior: BehaviorMetrics | None


class JobStatusView(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    job_id: str
    queue: str
    name: str
    state: str
    progress: float
    progress_message: str
    attempt: int
    max_attempts: int
    request_id: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    events_url: str


class JobResultView(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    job_id: str
    state: str
    result: Any = None
    error: str | None = None


class JobProgressView(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    job_id: str
    state: str
    progress: float
    message: str


class ActiveJobs(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    wallet_address: str
    jobs: list[JobStatusView]


class QueueHealth(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    waiting: int
    active: int
    delayed: int
    dead: int
    workers: int
    paused: bool
    oldest_waiting_seconds: float


class QueuesHealth(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    overall_status: Literal["healthy", "degraded", "unhealthy"]
    redis: bool
    queues: dict[str, QueueHealth]


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str


class AnalysisInProgress(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """409: an analysis of the wallet is already queued or running; watch that one."""

    error: ErrorBody
    job_id: str
    request_id: str | None
    status: str
    queue_name: str
    monitoring_url: str
    events_url: str


class SyncOptionsBody(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    force_refresh: bool = False
    max_swaps: Annotated[int, msgspec.Meta(ge=1)] | None = None


class SyncBody(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """01's ``SyncWalletJobData``."""

    wallet_address: str
    sync_options: SyncOptionsBody = SyncOptionsBody()
    priority: PlanPriority | None = None
    request_id: str | None = None


class JobAccepted(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    job_id: str
    request_id: str
    status: str
    queue_name: str
    monitoring_url: str
    events_url: str
    deduplicated: bool = False


class AnalyzeBody(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """01's ``BulkWalletAnalysisData``: sync every wallet, then each analysis type of each."""

    wallet_addresses: list[str]
    analysis_types: list[AnalysisType] = msgspec.field(default_factory=lambda: ["pnl", "behavior"])
    failure_threshold: Annotated[float, msgspec.Meta(gt=0, le=1)] = SIMILARITY.failure_threshold
    force_refresh: bool = False
    priority: PlanPriority | None = None


class BulkAccepted(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    bulk_job_id: str
    request_id: str
    status: str
    queue_name: str
    wallets: int
    analysis_types: list[AnalysisType]
    jobs: int  # analyses and syncs under the bulk parent
    monitoring_url: str
    events_url: str


class BulkWalletProgress(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    state: Literal["waiting", "running", "completed", "failed"]
    sync: dict[str, str]  # analysis type -> state of the sync it waits for
    analyses: dict[str, str]  # analysis type -> state
    error: str | None = None


class BulkTypeProgress(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    total: int
    completed: int
    failed: int
    running: int
    waiting: int


class BulkStatus(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    bulk_job_id: str
    request_id: str | None
    state: str  # the bulk parent's: waiting-children, queued, active, completed, dead
    progress: float  # share of the flow's jobs finished, 0-100
    failure_threshold: float
    wallets: dict[str, BulkWalletProgress]
    types: dict[str, BulkTypeProgress]
    result: Any = None
    error: str | None = None
    events_url: str


class AdminQueueStats(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """01's ``getQueueStats`` per queue, by the plans' queue name."""

    queue: str
    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    dead: int
    paused: bool
    workers: int


class AdminQueuesStats(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    queues: dict[str, AdminQueueStats]  # by the plans' queue name


class QueuePaused(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    queue_name: str
    queue: str
    paused: bool


class MaintenanceView(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    name: str
    queue: str
    cron: str | None
    every: float | None
    keep_completed: int
    keep_failed: int
    completed: list[Any]  # the kept runs, newest first
    failed: list[Any]


class MaintenanceList(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    schedules: list[MaintenanceView]
