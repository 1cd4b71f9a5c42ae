"""The Polymarket queues (05): the hourly whale update (never two at once), the 30 s anomaly
batch (which enqueues an alert per new anomaly), per-trade analysis, and alert delivery
(rate-limited, retried, dead-lettered when the webhook keeps failing)."""

from __future__ import annotations

import time

import streamq
from processors.analysis.polymarket import AnomalyScore
from processors.config import POLYMARKET_ALERTS
from processors.jobs.coordination import LIMIT_PICKUP, ensure_setup, named_lock
from processors.jobs.signals import mapped_errors
from processors.jobs.types import (
    AlertOutcome,
    AnalyzeTrade,
    AnomalyBatch,
    BatchOutcome,
    SendAlert,
    UpdateWhales,
    WhalesOutcome,
)
from processors.runtime import Runtime, runtime_of
from processors.services.polymarket import (
    DAY,
    analyze_trade_by_id,
    deliver_alert,
    detect_anomalies,
    ingest_trades,
    update_whales,
)

__all__ = [
    "analyze_trade_job",
    "batch_job",
    "polymarket_now",
    "send_alert_job",
    "update_whales_job",
]


def polymarket_now(rt: Runtime) -> int:
    """The Polymarket clock: the simulated world's fixed "now", else the wall clock."""
    world = getattr(rt.providers.polymarket, "world", None)
    config = getattr(world, "config", None)
    now = getattr(config, "now", None)
    return int(now) if isinstance(now, int) else int(time.time())


async def read_cursor(rt: Runtime) -> int | None:
    """Where the last anomaly batch stopped (epoch seconds), if one ran."""
    raw = await (await rt.redis()).get(rt.key("polymarket", "cursor"))
    return int(raw) if raw else None


async def advance_cursor(rt: Runtime, until: int) -> None:
    """Moves the batch cursor forward to ``until``: an explicit older window must not rewind
    the scheduled batches."""
    redis = await rt.redis()
    key = rt.key("polymarket", "cursor")
    await redis.set(key, max(until, int(await redis.get(key) or 0)))


async def update_whales_job(ctx: streamq.Context, req: UpdateWhales) -> WhalesOutcome:
    """``update-all-whales``: re-ranks the top traders."""
    rt = runtime_of(ctx.app)
    # A lock, not only unique tick ids: a manual run must not overlap the hourly one either.
    async with named_lock(rt, "polymarket-whales", ttl=600.0):
        with mapped_errors():
            whales = await update_whales(rt.store, top=req.top, now=polymarket_now(rt))
    return WhalesOutcome(whales=[w.wallet for w in whales])


async def batch_job(ctx: streamq.Context, req: AnomalyBatch) -> BatchOutcome:
    """``batch-detection``: ingests the trades since the last batch, scores them, and enqueues
    an alert per new anomaly."""
    rt = runtime_of(ctx.app)
    now = polymarket_now(rt)
    since = req.since
    if since is None:
        last = await read_cursor(rt)
        since = last if last is not None else now - DAY
    until = req.until if req.until is not None else now + 1
    with mapped_errors():
        ingested = await ingest_trades(rt.store, rt.providers.polymarket, since=since, until=until)
        await ctx.progress(40, f"ingested {ingested} trades")
        batch = await detect_anomalies(rt.store, now=now)
    await advance_cursor(rt, until)
    await ctx.progress(80, f"{batch.detected} anomalies in {batch.checked} trades")
    if batch.alerts:
        fresh_limit = await ensure_setup(rt.app)
        await rt.app.enqueue_many(
            [
                streamq.EnqueueRequest(
                    name="send-alert",
                    payload=SendAlert(alert_id=a),
                    id=f"alert-{a}",
                    queue=rt.queue(POLYMARKET_ALERTS),
                    request_id=ctx.job_id,
                    delay=LIMIT_PICKUP if fresh_limit else None,
                )
                for a in batch.alerts
            ]
        )
    return BatchOutcome(
        ingested=ingested,
        checked=batch.checked,
        detected=batch.detected,
        anomalies=[a.trade_id for a in batch.anomalies],
        alerts=batch.alerts,
    )


async def analyze_trade_job(ctx: streamq.Context, req: AnalyzeTrade) -> AnomalyScore:
    """``analyze-transaction``: one trade's anomaly score."""
    rt = runtime_of(ctx.app)
    with mapped_errors():
        return await analyze_trade_by_id(rt.store, req.trade_id)


async def send_alert_job(ctx: streamq.Context, req: SendAlert) -> AlertOutcome:
    """``send-alert``: delivers one alert (once: a delivered alert is not sent again)."""
    rt = runtime_of(ctx.app)
    with mapped_errors():
        sent = await deliver_alert(rt.store, rt.providers.alerts, req.alert_id)
    return AlertOutcome(alert_id=req.alert_id, status="sent" if sent else "already-sent")
