"""streamq task options for the plans' jobs, read from ``processors.config.JOBS``."""

from __future__ import annotations

from typing import Any

import streamq
from processors.config import CACHE, JOBS
from processors.runtime import Runtime

__all__ = ["backoff_of", "task_options"]

# Per-job options beyond what the plans' table says.
_EXTRA: dict[str, dict[str, Any]] = {
    # A fetch's result outlives the 30 s balance cache window only briefly.
    "fetch-balances": {"result_ttl": 2 * CACHE.balances_ttl},
}


# Who may start a job, and the ids the application derives for it (processors.ids). Only the
# jobs the plans' clients start themselves are public on the server's generic job API; the
# rest are started by the application (its endpoints, flows, schedules). The generic API
# refuses an id in a reserved space, so nobody plants a job the application would dedup onto.
_ACCESS: dict[str, dict[str, Any]] = {
    "sync-wallet": {"public": True, "reserved_ids": "sync-"},
    "fetch-balances": {"reserved_ids": "bal:"},
    "analyze-pnl": {"public": True, "reserved_ids": "pnl-"},
    "analyze-behavior": {"public": True, "reserved_ids": "behavior-"},
    "analyze-similarity": {"reserved_ids": "similarity-"},
    "dashboard-wallet-analysis": {"public": True, "reserved_ids": "dashboard-"},
    "bulk-analysis": {"reserved_ids": "bulk-"},
    "enrich-token-balances": {"reserved_ids": "enrich-"},
    "send-alert": {"reserved_ids": "alert-"},
}


def backoff_of(name: str, scale: float = 1.0) -> streamq.Backoff:
    """The retry backoff of job ``name``, its delays multiplied by ``scale``."""
    spec = JOBS[name]
    base = spec.backoff_delay * scale
    if spec.backoff == "fixed":
        return streamq.Backoff.fixed(base)
    return streamq.Backoff.exponential(base, maximum=max(base, 60.0 * scale))


def task_options(rt: Runtime, name: str, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of ``App.task`` for job ``name`` in this deployment."""
    spec = JOBS[name]
    options: dict[str, Any] = {
        "queue": rt.queue(spec.queue),
        "priority": spec.priority,
        "timeout": spec.timeout,
        "max_attempts": spec.max_attempts,
        "backoff": backoff_of(name, rt.settings.backoff_scale),
        # The plans' staleAfter is the lease: a job whose worker stops renewing it that long
        # is taken over by another worker.
        "lease": spec.stale_after or 30.0,
    }
    options.update(_ACCESS.get(name, {}))
    options.update(_EXTRA.get(name, {}))
    options.update(overrides)
    return options
