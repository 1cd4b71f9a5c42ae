"""The plans' queues, jobs and limits as plain data, for the wiring onto streamq.

Values come from the seed plans (shared/seeds/01..05); where plans disagree, DESIGN.md §7 decides
the queue layout (three analytics queues, similarity inside ``analysis-operations``, plus the
Polymarket queues) and the later plan (03) gives the concurrency. Durations are seconds.
Priorities are the plans' numbers (10 critical .. 1 maintenance); ``LANE_OF_PRIORITY`` maps them
onto streamq's lanes.
"""

from __future__ import annotations

from typing import Any, Literal

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
Backoff = Literal["exponential", "fixed"]
# (attempts, backoff, first delay in seconds); 05's default where a plan names none.
Retry = tuple[int, Backoff, float]
_DEFAULT_RETRY: Retry = (3, "exponential", 2.0)


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
    backoff: Backoff
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


def _job(
    name: str,
    queue: str,
    priority: Lane,
    timeout: float,
    stale_after: float | None,
    retry: Retry = _DEFAULT_RETRY,
    **repeat: Any,
) -> JobSpec:
    """One row of ``JOBS``; ``repeat`` holds the schedule fields (cron, every, keep_*)."""
    max_attempts, backoff, backoff_delay = retry
    return JobSpec(
        name=name,
        queue=queue,
        priority=priority,
        timeout=timeout,
        stale_after=stale_after,
        max_attempts=max_attempts,
        backoff=backoff,
        backoff_delay=backoff_delay,
        **repeat,
    )


def _token_maintenance(name: str, timeout: float, cron: str, keep: tuple[int, int]) -> JobSpec:
    # 01 "Job Scheduling for Maintenance": on the token metadata queue, maintenance priority,
    # two attempts 30 s apart; ``keep`` is (completed, failed) runs kept on record.
    return _job(
        name,
        ENRICHMENT_OPERATIONS,
        "bulk",
        timeout,
        None,
        (2, "exponential", 30.0),
        cron=cron,
        keep_completed=keep[0],
        keep_failed=keep[1],
    )


# One row a job: name, queue, lane, timeout, stale_after[, retry][, schedule].
JOBS: dict[str, JobSpec] = {
    j.name: j
    for j in (
        # 01 "Comprehensive Timeout Strategy" + "Queue Configuration Strategy"
        _job("sync-wallet", WALLET_OPERATIONS, "normal", 600, 900),
        # 03: balances are the highest-priority lane; their result is cached 30 s.
        _job("fetch-balances", WALLET_OPERATIONS, "critical", 60, 120),
        _job("analyze-pnl", ANALYSIS_OPERATIONS, "normal", 300, 480, (2, "fixed", 1.0)),
        _job("analyze-behavior", ANALYSIS_OPERATIONS, "normal", 300, 480, (2, "fixed", 1.0)),
        # 01 "calculate-similarity" (30 min, exponential 5 s), run in analysis-operations (03).
        _job(
            "analyze-similarity", ANALYSIS_OPERATIONS, "high", 1800, 2700, (2, "exponential", 5.0)
        ),
        # 02 "Add Job Timeout Configuration" + DASHBOARD_JOB_CONFIG.MAX_RETRIES
        _job("dashboard-wallet-analysis", ANALYSIS_OPERATIONS, "critical", 900, 1200),
        # 01 "Bulk Operations with BullMQ Flows": the parent of a bulk analysis; runs once every
        # analysis of every wallet has ended, and applies the wallets' partial-failure threshold.
        _job("bulk-analysis", ANALYSIS_OPERATIONS, "normal", 300, 480, (1, "fixed", 1.0)),
        # 01 "enrich-metadata" (2 min, 3 attempts, exponential 3 s); priority LOW (3) per 02.
        _job(
            "enrich-token-balances", ENRICHMENT_OPERATIONS, "low", 120, 300, (3, "exponential", 3.0)
        ),
        _token_maintenance("cleanup-old-cache", 300, "0 2 * * *", keep=(5, 10)),
        _token_maintenance("refresh-token-metadata", 600, "0 */6 * * *", keep=(3, 5)),
        # 05, with its defaults (attempts 3, exponential 2 s) where a queue names none.
        _job(
            "update-all-whales",
            POLYMARKET_WHALE_UPDATES,
            "bulk",
            600,
            None,
            (2, "exponential", 2.0),
            cron="0 * * * *",
        ),
        _job("batch-detection", POLYMARKET_ANOMALY_BATCH, "normal", 45, None, every=30.0),
        _job("analyze-transaction", POLYMARKET_ANALYSIS, "high", 5, None, (2, "exponential", 2.0)),
        _job("send-alert", POLYMARKET_ALERTS, "high", 10, None),
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
