"""The Polymarket queues (05): the hourly whale update (never two at once), the 30 s anomaly
batch (which enqueues an alert per new anomaly), per-trade analysis, and alert delivery
(rate-limited, retried, dead-lettered when the webhook keeps failing)."""

from __future__ import annotations

import time

import streamq
from processors.analysis.polymarket import AnomalyScore
from processors.config import POLYMARKET_ALERTS
from processors.jobs_support import (
    LIMIT_PICKUP,
    Runtime,
    ensure_setup,
    mapped_errors,
    named_lock,
)
from processors.jobs_types import (
    AlertOutcome,
    AnalyzeTrade,
    AnomalyBatch,
    BatchOutcome,
    SendAlert,
    UpdateWhales,
    WhalesOutcome,
)
from processors.jobs_wallet import task_options
from processors.polymarket_service import (
    DAY,
    analyze_trade_by_id,
    deliver_alert,
    detect_anomalies,
    ingest_trades,
    update_whales,
)

__all__ = ["polymarket_now", "register_polymarket_jobs"]


def polymarket_now(rt: Runtime) -> int:
    """The Polymarket clock: the simulated world's fixed "now", else the wall clock."""
    world = getattr(rt.providers.polymarket, "world", None)
    config = getattr(world, "config", None)
    now = getattr(config, "now", None)
    return int(now) if isinstance(now, int) else int(time.time())


def register_polymarket_jobs(app: streamq.App, rt: Runtime) -> None:
    @app.task("update-all-whales", **task_options(rt, "update-all-whales"))
    async def update_whales_job(ctx: streamq.Context, req: UpdateWhales) -> WhalesOutcome:
        # A lock, not only unique tick ids: a manual run must not overlap the hourly one either.
        async with named_lock(rt, "polymarket-whales", ttl=600.0):
            with mapped_errors():
                whales = await update_whales(rt.store, top=req.top, now=polymarket_now(rt))
        return WhalesOutcome(whales=[w.wallet for w in whales])

    @app.task("batch-detection", **task_options(rt, "batch-detection"))
    async def batch_job(ctx: streamq.Context, req: AnomalyBatch) -> BatchOutcome:
        now = polymarket_now(rt)
        await app.connect()
        cursor_key = rt.key("polymarket", "cursor")
        since = req.since
        if since is None:
            raw = await app.redis.get(cursor_key)
            since = int(raw) if raw else now - DAY
        until = req.until if req.until is not None else now + 1
        with mapped_errors():
            ingested = await ingest_trades(rt.store, rt.providers.polymarket, since=since,
                                           until=until)  # fmt: skip
            await ctx.progress(40, f"ingested {ingested} trades")
            batch = await detect_anomalies(rt.store, now=now)
        # Forward only: an explicit older window must not rewind the scheduled batches.
        await app.redis.set(cursor_key, max(until, int(await app.redis.get(cursor_key) or 0)))
        await ctx.progress(80, f"{batch.detected} anomalies in {batch.checked} trades")
        if batch.alerts:
            fresh_limit = await ensure_setup(app)
            await app.enqueue_many([
                streamq.EnqueueRequest(name="send-alert", payload=SendAlert(alert_id=a),
                                       id=f"alert-{a}", queue=rt.queue(POLYMARKET_ALERTS),
                                       request_id=ctx.job_id,
                                       delay=LIMIT_PICKUP if fresh_limit else None)
                for a in batch.alerts
            ])  # fmt: skip
        return BatchOutcome(ingested=ingested, checked=batch.checked, detected=batch.detected,
                            anomalies=[a.trade_id for a in batch.anomalies],
                            alerts=batch.alerts)  # fmt: skip

    @app.task("analyze-transaction", **task_options(rt, "analyze-transaction"))
    async def analyze_trade_job(ctx: streamq.Context, req: AnalyzeTrade) -> AnomalyScore:
        with mapped_errors():
            return await analyze_trade_by_id(rt.store, req.trade_id)

    @app.task("send-alert", **task_options(rt, "send-alert"))
    async def send_alert_job(ctx: streamq.Context, req: SendAlert) -> AlertOutcome:
        with mapped_errors():
            sent = await deliver_alert(rt.store, rt.providers.alerts, req.alert_id)
        return AlertOutcome(alert_id=req.alert_id, status="sent" if sent else "already-sent")
