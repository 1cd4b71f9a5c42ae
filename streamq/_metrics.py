"""Prometheus metrics recorded by producers and workers (names fixed by DESIGN §6)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

_LABELS = ("queue", "name")

JOBS_ENQUEUED = Counter("streamq_jobs_enqueued", "Jobs enqueued (new, not deduplicated).", _LABELS)
JOBS_COMPLETED = Counter("streamq_jobs_completed", "Jobs completed.", _LABELS)
JOBS_FAILED = Counter("streamq_jobs_failed", "Handler failures (each failed attempt).", _LABELS)
JOBS_RETRIED = Counter("streamq_jobs_retried", "Jobs scheduled for another attempt.", _LABELS)
JOBS_DEAD = Counter("streamq_jobs_dead", "Jobs sent to the dead-letter stream.", _LABELS)
JOBS_RECLAIMED = Counter(
    "streamq_jobs_reclaimed", "Deliveries taken back after their lease expired.", ("queue",)
)
JOBS_FENCED = Counter(
    "streamq_jobs_fenced", "Outcomes refused because the delivery's lease was taken.", ("queue",)
)
JOB_RUN_SECONDS = Histogram(
    "streamq_job_run_seconds",
    "Handler run time.",
    _LABELS,
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
)
JOB_WAIT_SECONDS = Histogram(
    "streamq_job_wait_seconds",
    "Time from enqueue (or due time) to start.",
    _LABELS,
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
)
