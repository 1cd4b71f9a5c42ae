"""The JSON bodies of the application's endpoints, in the plans' camelCase."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from processors.analysis.behavior import BehaviorMetrics
from processors.analysis.pnl import PortfolioStats
from processors.analysis.similarity import VectorType
from processors.config import SIMILARITY

__all__ = [
    "ActiveJobs",
    "DashboardAccepted",
    "DashboardBody",
    "JobProgressView",
    "JobResultView",
    "JobStatusView",
    "QueueHealth",
    "QueuesHealth",
    "SimilarityAccepted",
    "SimilarityBody",
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


class DashboardAccepted(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    job_id: str
    request_id: str
    status: str
    queue_name: str
    estimated_processing_time: str
    monitoring_url: str
    events_url: str
    deduplicated: bool = False


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
