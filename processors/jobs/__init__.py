"""The application's jobs on streamq: one module per queue family, each handler a module-level
``async def (ctx, payload) -> result`` over typed msgspec payloads and results (``types``).

- ``wallet``: ``sync-wallet``, ``fetch-balances`` (wallet-operations);
- ``analysis``: ``analyze-pnl``, ``analyze-behavior``, ``dashboard-wallet-analysis``,
  ``analyze-similarity`` (analysis-operations), and the producers that start them;
- ``bulk``: ``bulk-analysis``, the parent of 01's bulk flow, and its producer;
- ``enrichment``: ``enrich-token-balances`` (enrichment-operations);
- ``maintenance``: ``cleanup-old-cache`` and ``refresh-token-metadata`` (01's schedules);
- ``polymarket``: the whale update, the anomaly batch, trade analysis and alert delivery;
- ``options``: each job's task options from the plans' table; ``signals``: domain errors as
  broker signals; ``coordination``: locks, flows, schedules, the alert rate limit;
  ``balance_cache`` and ``wallet_index``: the application's own Redis keys.

``register_jobs(app, rt)`` registers every handler of ``HANDLERS`` with its options.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import streamq
from processors.jobs import analysis, bulk, enrichment, maintenance, polymarket, wallet
from processors.jobs.options import task_options
from processors.runtime import Runtime

__all__ = ["HANDLERS", "register_jobs"]

Handler = Callable[[streamq.Context, Any], Awaitable[Any]]

# Job name -> handler: every job of processors.config.JOBS, in the plans' order.
HANDLERS: dict[str, Handler] = {
    "sync-wallet": wallet.sync_wallet_job,
    "fetch-balances": wallet.fetch_balances_job,
    "analyze-pnl": analysis.analyze_pnl_job,
    "analyze-behavior": analysis.analyze_behavior_job,
    "analyze-similarity": analysis.similarity_job,
    "dashboard-wallet-analysis": analysis.dashboard_job,
    "bulk-analysis": bulk.bulk_job,
    "enrich-token-balances": enrichment.enrich_job,
    "cleanup-old-cache": maintenance.cleanup_old_cache_job,
    "refresh-token-metadata": maintenance.refresh_tokens_job,
    "update-all-whales": polymarket.update_whales_job,
    "batch-detection": polymarket.batch_job,
    "analyze-transaction": polymarket.analyze_trade_job,
    "send-alert": polymarket.send_alert_job,
}


def register_jobs(app: streamq.App, rt: Runtime) -> None:
    """Registers every handler on ``app`` with the task options of ``rt``'s deployment."""
    for name, handler in HANDLERS.items():
        app.task(name, **task_options(rt, name))(handler)
