"""The plans' queues, jobs and limits as plain data, for the wiring onto streamq.

Values come from the seed plans (shared/seeds/01..05); where plans disagree, DESIGN.md §7 decides
the queue layout (three analytics queues, similarity inside ``analysis-operations``, plus the
Polymarket queues) and the later plan (03) gives the concurrency. Durations are seconds.
Priorities are the plans' numbers (10 critical .. 1 maintenance); ``LANE_OF_PRIORITY`` maps them
onto streamq's lanes.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "ANALYSIS_OPERATIONS",
    "CACHE",
    "ENRICHMENT",
    "ENRICHMENT_OPERATIONS",
    "JOBS",
    "LANE_OF_PRIORITY",
    "LOCKS",
    "POLYMARKET_ALERTS",
    "POLYMARKET_ANALYSIS",
    "POLYMARKET_ANOMALY_BATCH",
    "POLYMARKET_WHALE_UPDATES",
    "PRIORITY",
    "QUEUES",
    "RATE_LIMITS",
    "SIMILARITY",
    "SYNC",
    "WALLET_OPERATIONS",
    "JobSpec",
    "QueueSpec",
]

WALLET_OPERATIONS = "wallet-operations"
ANALYSIS_OPERATIONS = "analysis-operations"
ENRICHMENT_OPERATIONS = "enrichment-operations"
POLYMARKET_WHALE_UPDATES = "polymarket-whale-updates"
POLYMARKET_ANOMALY_BATCH = "polymarket-anomaly-batch"
POLYMARKET_ANALYSIS = "polymarket-analysis"
POLYMARKET_ALERTS = "polymarket-alerts"

# 01 "Priority System Design"
PRIORITY = {"critical": 10, "high": 7, "normal": 5, "low": 3, "maintenance": 1}
LANE_OF_PRIORITY = {10: "critical", 7: "high", 5: "normal", 3: "low", 1: "bulk"}

Lane = Literal["critical", "high", "normal", "low", "bulk"]


class QueueSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    concurrency: int
    purpose: str


class JobSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    queue: str
    priority: Lane
    timeout: float
    stale_after: float | None  # the plans' "staleAfter": a job running longer is stuck
    max_attempts: int
    backoff: Literal["exponential", "fixed"]
    backoff_delay: float
    cron: str | None = None  # repeat schedule (cron expression)
    every: float | None = None  # repeat interval in seconds
    # The plans' removeOnComplete / removeOnFail: how many finished runs are kept on record.
    keep_completed: int | None = None
    keep_failed: int | None = None


QUEUES: dict[str, QueueSpec] = {
    q.name: q
    for q in (
        # 03 "Target: 3 queues": balances 50, analysis 10, enrichment 20 (01 had 3 / 5 / 3).
        QueueSpec(name=WALLET_OPERATIONS, concurrency=50, purpose="sync and balance fetching"),
        QueueSpec(name=ANALYSIS_OPERATIONS, concurrency=10, purpose="PnL, behaviour, similarity"),
        QueueSpec(name=ENRICHMENT_OPERATIONS, concurrency=20, purpose="token metadata, prices"),
        # 05 "Queue Definitions"
        QueueSpec(name=POLYMARKET_WHALE_UPDATES, concurrency=1, purpose="hourly whale ranking"),
        QueueSpec(name=POLYMARKET_ANOMALY_BATCH, concurrency=3, purpose="30 s anomaly batches"),
        QueueSpec(name=POLYMARKET_ANALYSIS, concurrency=10, purpose="one trade on demand"),
        QueueSpec(name=POLYMARKET_ALERTS, concurrency=5, purpose="webhook alert delivery"),
    )
}

JOBS: dict[str, JobSpec] = {
    j.name: j
    for j in (
        # 01 "Comprehensive Timeout Strategy" + "Queue Configuration Strategy"
        JobSpec(
            name="sync-wallet",
            queue=WALLET_OPERATIONS,
            priority="normal",
            timeout=600,
            stale_after=900,
            max_attempts=3,
            backoff="exponential",
            backoff_delay=2.0,
        ),
        # 03: balances are the highest-priority lane; their result is cached 30 s.
        JobSpec(
            name="fetch-balances",
            queue=WALLET_OPERATIONS,
            priority="critical",
            timeout=60,
            stale_after=120,
            max_attempts=3,
            backoff="exponential",
            backoff_delay=2.0,
        ),
        JobSpec(
            name="analyze-pnl",
            queue=ANALYSIS_OPERATIONS,
            priority="normal",
            timeout=300,
            stale_after=480,
            max_attempts=2,
            backoff="fixed",
            backoff_delay=1.0,
        ),
        JobSpec(
            name="analyze-behavior",
            queue=ANALYSIS_OPERATIONS,
            priority="normal",
            timeout=300,
            stale_after=480,
            max_attempts=2,
            backoff="fixed",
            backoff_delay=1.0,
        ),
        # 01 "calculate-similarity" (30 min, exponential 5 s), run in analysis-operations (03).
        JobSpec(
            name="analyze-similarity",
            queue=ANALYSIS_OPERATIONS,
            priority="high",
            timeout=1800,
            stale_after=2700,
            max_attempts=2,
            backoff="exponential",
            backoff_delay=5.0,
        ),
        # 02 "Add Job Timeout Configuration" + DASHBOARD_JOB_CONFIG.MAX_RETRIES
        JobSpec(
            name="dashboard-wallet-analysis",
            queue=ANALYSIS_OPERATIONS,
            priority="critical",
            timeout=900,
            stale_after=1200,
            max_attempts=3,
            backoff="exponential",
            backoff_delay=2.0,
        ),
        # 01 "Bulk Operations with BullMQ Flows": the parent of a bulk analysis; runs once every
        # analysis of every wallet has ended, and applies the wallets' partial-failure threshold.
        JobSpec(
            name="bulk-analysis",
            queue=ANALYSIS_OPERATIONS,
            priority="normal",
            timeout=300,
            stale_after=480,
            max_attempts=1,
            backoff="fixed",
            backoff_delay=1.0,
        ),
        # 01 "enrich-metadata" (2 min, 3 attempts, exponential 3 s); priority LOW (3) per 02.
        JobSpec(
            name="enrich-token-balances",
            queue=ENRICHMENT_OPERATIONS,
            priority="low",
            timeout=120,
            stale_after=300,
            max_attempts=3,
            backoff="exponential",
            backoff_delay=3.0,
        ),
        # 05, with its defaults (attempts 3, exponential 2 s) where a queue names none.
        # 01 "Job Scheduling for Maintenance": on the token metadata queue, maintenance priority.
        JobSpec(
            name="cleanup-old-cache",
            queue=ENRICHMENT_OPERATIONS,
            priority="bulk",
            timeout=300,
            stale_after=None,
            max_attempts=2,
            backoff="exponential",
            backoff_delay=30.0,
            cron="0 2 * * *",
            keep_completed=5,
            keep_failed=10,
        ),
        JobSpec(
            name="refresh-token-metadata",
            queue=ENRICHMENT_OPERATIONS,
            priority="bulk",
            timeout=600,
            stale_after=None,
            max_attempts=2,
            backoff="exponential",
            backoff_delay=30.0,
            cron="0 */6 * * *",
            keep_completed=3,
            keep_failed=5,
        ),
        JobSpec(
            name="update-all-whales",
            queue=POLYMARKET_WHALE_UPDATES,
            priority="bulk",
            timeout=600,
            stale_after=None,
            max_attempts=2,
            backoff="exponential",
            backoff_delay=2.0,
            cron="0 * * * *",
        ),
        JobSpec(
            name="batch-detection",
            queue=POLYMARKET_ANOMALY_BATCH,
            priority="normal",
            timeout=45,
            stale_after=None,
            max_attempts=3,
            backoff="exponential",
            backoff_delay=2.0,
            every=30.0,
        ),
        JobSpec(
            name="analyze-transaction",
            queue=POLYMARKET_ANALYSIS,
            priority="high",
            timeout=5,
            stale_after=None,
            max_attempts=2,
            backoff="exponential",
            backoff_delay=2.0,
        ),
        JobSpec(
            name="send-alert",
            queue=POLYMARKET_ALERTS,
            priority="high",
            timeout=10,
            stale_after=None,
            max_attempts=3,
            backoff="exponential",
            backoff_delay=2.0,
        ),
    )
}


class _Locks(msgspec.Struct, frozen=True, kw_only=True):
    sync_wallet_ttl: float = 300.0  # 01: "sync-lock-{wallet}" PX 300000
    dashboard_ttl: float = 900.0  # 02: lock held for the job's timeout


class _Cache(msgspec.Struct, frozen=True, kw_only=True):
    balances_ttl: float = 30.0  # 03: balance:{wallet} TTL 30 s
    results_ttl: float = 3600.0  # analysis:{wallet}:{reqId}, enrich:{wallet}:{reqId}
    token_info_max_age: float = 6 * 3600.0  # 01: refresh-token-metadata every 6 hours
    # cleanup-old-cache forgets tokens not fetched for this long (nobody held them since).
    token_info_retention: float = 7 * 86400.0
    refresh_limit: int = 3000  # refresh-token-metadata refreshes at most this many per run


class _Sync(msgspec.Struct, frozen=True, kw_only=True):
    skip_if_synced_within: float = 300.0  # 01: "lastSyncAge < 5 min" -> already-current
    fresh_for: float = 3600.0  # wallet status FRESH within this; STALE after
    page_size: int = 100  # 02: SyncOptions.limit
    dashboard_max_swaps: int = 2000  # 02: DASHBOARD_MAX_SIGNATURES (value not in the plan)


class _Similarity(msgspec.Struct, frozen=True, kw_only=True):
    failure_threshold: float = 0.8  # 01: require 80 % of wallets to succeed
    min_wallets: int = 2


class _Enrichment(msgspec.Struct, frozen=True, kw_only=True):
    batch_size: int = 30  # DexScreener: 30 addresses per call
    large: int = 100
    massive: int = 1000  # 03: "smart batching for large token sets (>1000)"


class _RateLimits(msgspec.Struct, frozen=True, kw_only=True):
    helius_rps: float = 10.0  # 01: "Helius API rate limits (10 RPS)"
    dexscreener_rps: float = 5.0  # DexScreener: 300 requests per minute
    polymarket_rps: float = 10.0
    webhook_rps: float = 0.5  # Discord webhooks: 30 messages per minute


LOCKS = _Locks()
CACHE = _Cache()
SYNC = _Sync()
SIMILARITY = _Similarity()
ENRICHMENT = _Enrichment()
RATE_LIMITS = _RateLimits()
