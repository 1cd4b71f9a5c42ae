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
    "Accepted",
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


class _Answer(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """What every answer body shares: immutable, camelCase on the wire."""


class _Request(_Answer, frozen=True, forbid_unknown_fields=True):
    """A request body: an unknown field is a 422, not silently dropped."""


class Accepted(_Answer, frozen=True):
    """A 202's way to find and watch the job it queued."""

    job_id: str
    request_id: str
    status: str
    queue_name: str
    monitoring_url: str
    events_url: str


class DashboardBody(_Request, frozen=True):
    wallet_address: str
    force_refresh: bool = False
    enrich_metadata: bool = True
    # While another analysis of the wallet is unfinished: 409 naming it ("reject", the plans'
    # answer), or a new job queued behind it ("queue": it waits for the wallet's lock).
    if_running: Literal["reject", "queue"] = "reject"


class DashboardAccepted(Accepted, frozen=True):
    estimated_processing_time: str
    deduplicated: bool = False
    enrichment_job_id: str | None = None  # the token enrichment running alongside
    enrichment_results_url: str | None = None  # its enriched batches as they come
    results_url: str | None = None  # everything of this request, by its id


class SimilarityBody(_Request, frozen=True):
    wallet_addresses: list[str]
    vector_type: VectorType = "capital"
    failure_threshold: float = SIMILARITY.failure_threshold
    force_sync: bool = False


class SimilarityAccepted(Accepted, frozen=True):
    wallets_needing_sync: list[str]
    estimated_processing_time: str


class TriggerBody(_Request, frozen=True):
    wallet_addresses: list[str]


class TriggerResult(_Answer, frozen=True):
    message: str
    triggered_analyses: list[str]
    skipped_analyses: list[str]
    job_ids: dict[str, str]


class WalletStatusView(_Answer, frozen=True):
    wallet_address: str
    status: Literal["FRESH", "STALE", "MISSING"]
    last_synced_at: int | None
    swap_count: int


class WalletStatuses(_Answer, frozen=True):
    statuses: list[WalletStatusView]


class WalletSummary(WalletStatusView, frozen=True):
    pnl: PortfolioStats | None
    behavior: BehaviorMetrics | None


class JobStatusView(_Answer, frozen=True):
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


class JobResultView(_Answer, frozen=True):
    job_id: str
    state: str
    result: Any = None
    error: str | None = None


class JobProgressView(_Answer, frozen=True):
    job_id: str
    state: str
    progress: float
    message: str


class ActiveJobs(_Answer, frozen=True):
    wallet_address: str
    jobs: list[JobStatusView]


class QueueHealth(_Answer, frozen=True):
    waiting: int
    active: int
    delayed: int
    dead: int
    workers: int
    paused: bool
    oldest_waiting_seconds: float


class QueuesHealth(_Answer, frozen=True):
    overall_status: Literal["healthy", "degraded", "unhealthy"]
    redis: bool
    queues: dict[str, QueueHealth]


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str


class AnalysisInProgress(_Answer, frozen=True):
    """409: an analysis of the wallet is already queued or running; watch that one."""

    error: ErrorBody
    job_id: str
    request_id: str | None
    status: str
    queue_name: str
    monitoring_url: str
    events_url: str


class SyncOptionsBody(_Request, frozen=True):
    force_refresh: bool = False
    max_swaps: Annotated[int, msgspec.Meta(ge=1)] | None = None


class SyncBody(_Request, frozen=True):
    """01's ``SyncWalletJobData``."""

    wallet_address: str
    sync_options: SyncOptionsBody = SyncOptionsBody()
    priority: PlanPriority | None = None
    request_id: str | None = None


class JobAccepted(Accepted, frozen=True):
    deduplicated: bool = False


class AnalyzeBody(_Request, frozen=True):
    """01's ``BulkWalletAnalysisData``: sync every wallet, then each analysis type of each."""

    wallet_addresses: list[str]
    analysis_types: list[AnalysisType] = msgspec.field(default_factory=lambda: ["pnl", "behavior"])
    failure_threshold: Annotated[float, msgspec.Meta(gt=0, le=1)] = SIMILARITY.failure_threshold
    force_refresh: bool = False
    priority: PlanPriority | None = None


class BulkAccepted(_Answer, frozen=True):
    bulk_job_id: str
    request_id: str
    status: str
    queue_name: str
    wallets: int
    analysis_types: list[AnalysisType]
    jobs: int  # analyses and syncs under the bulk parent
    monitoring_url: str
    events_url: str


class BulkWalletProgress(_Answer, frozen=True):
    state: Literal["waiting", "running", "completed", "failed"]
    sync: dict[str, str]  # analysis type -> state of the sync it waits for
    analyses: dict[str, str]  # analysis type -> state
    error: str | None = None


class BulkTypeProgress(_Answer, frozen=True):
    total: int
    completed: int
    failed: int
    running: int
    waiting: int


class BulkStatus(_Answer, frozen=True, kw_only=True):  # mypy: events_url after defaults
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


class AdminQueueStats(_Answer, frozen=True):
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


class AdminQueuesStats(_Answer, frozen=True):
    queues: dict[str, AdminQueueStats]  # by the plans' queue name


class QueuePaused(_Answer, frozen=True):
    queue_name: str
    queue: str
    paused: bool


class MaintenanceView(_Answer, frozen=True):
    name: str
    queue: str
    cron: str | None
    every: float | None
    keep_completed: int
    keep_failed: int
    completed: list[Any]  # the kept runs, newest first
    failed: list[Any]


class MaintenanceList(_Answer, frozen=True):
    schedules: list[MaintenanceView]
