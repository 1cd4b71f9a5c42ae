"""Polymarket as async services: ingest trades, rank whales, detect anomalies, send alerts.

The bodies of 05's jobs: ``update-all-whales`` (hourly) -> :func:`update_whales`;
``batch-detection`` (every 30 s) -> :func:`ingest_trades` then :func:`detect_anomalies`;
``analyze-transaction`` -> :func:`analyze_trade`; ``send-alert`` -> :func:`deliver_alert`.
"""

from __future__ import annotations

import time
from typing import Literal

import anyio.to_thread
import msgspec

from processors.analysis.polymarket import (
    AnomalyConfig,
    AnomalyScore,
    Whale,
    rank_whales,
    score_trades,
)
from processors.errors import ProcessorsError, ProviderError
from processors.models import Alert, PolymarketTrade
from processors.providers.base import AlertSink, PolymarketProvider
from processors.store import Store

__all__ = [
    "BatchResult",
    "alert_for_anomaly",
    "analyze_trade",
    "analyze_trade_by_id",
    "deliver_alert",
    "detect_anomalies",
    "ingest_trades",
    "update_whales",
]

DAY = 86_400


class BatchResult(msgspec.Struct, frozen=True, kw_only=True):
    checked: int
    detected: int
    anomalies: list[AnomalyScore]
    alerts: list[str]  # ids of the alerts created


async def ingest_trades(
    store: Store,
    polymarket: PolymarketProvider,
    *,
    since: int,
    until: int | None = None,
    page_size: int = 500,
) -> int:
    """Fetch trades in ``[since, until)`` page by page and store the new ones; returns how many."""
    added, offset = 0, 0
    while True:
        page = await polymarket.get_trades(since=since, until=until, limit=page_size, offset=offset)
        added += await anyio.to_thread.run_sync(store.add_pm_trades, page)
        if len(page) < page_size:
            return added
        offset += page_size


async def update_whales(
    store: Store,
    *,
    lookback: int = DAY,
    top: int = 50,
    min_volume_usd: float = 10_000.0,
    now: int | None = None,
) -> list[Whale]:
    """Rank whales over the stored trades of the last ``lookback`` seconds and save the ranking."""
    at = int(time.time()) if now is None else now
    trades = await anyio.to_thread.run_sync(
        lambda: store.pm_trades(since=at - lookback, until=at + 1)
    )
    whales = rank_whales(trades, top=top, min_volume_usd=min_volume_usd)
    await anyio.to_thread.run_sync(lambda: store.replace_whales(whales, now=at))
    return whales


def alert_for_anomaly(a: AnomalyScore, *, now: int) -> Alert:
    """The alert an anomaly raises; its id derives from the trade, so re-detection is a no-op."""
    severity: Literal["warning", "critical"] = "critical" if a.score >= 0.9 else "warning"
    return Alert(
        id=f"anomaly-{a.trade_id}",
        kind="polymarket-anomaly",
        severity=severity,
        title=f"Unusual Polymarket trade: {', '.join(a.reasons) or 'anomaly'}",
        description=f"Wallet {a.wallet} traded ${a.notional_usd:,.2f} (score {a.score:.2f}).",
        fields={
            "market": a.condition_id,
            "wallet": a.wallet,
            "trade": a.trade_id,
            "score": f"{a.score:.2f}",
            **{k: f"{v:.2f}" for k, v in a.components.items()},
        },
        created_at=now,
    )


async def detect_anomalies(
    store: Store,
    *,
    lookback: int = DAY,
    limit: int = 5000,
    config: AnomalyConfig | None = None,
    now: int | None = None,
) -> BatchResult:
    """Score the stored trades not yet checked against the last ``lookback`` seconds of trades.

    Flagged trades are saved as anomalies with a pending alert each; every scored trade is then
    marked checked, in that order, so a crash in between re-checks rather than loses a trade
    (anomalies and alerts are keyed by trade id, so a re-check adds nothing twice).
    """
    at = int(time.time()) if now is None else now
    pending = await anyio.to_thread.run_sync(
        lambda: store.pm_trades(unchecked_only=True, limit=limit)
    )
    if not pending:
        return BatchResult(checked=0, detected=0, anomalies=[], alerts=[])
    since = min(t.timestamp for t in pending) - lookback
    context = await anyio.to_thread.run_sync(lambda: store.pm_trades(since=since))
    flagged = [s for s in score_trades(pending, context, config=config) if s.flagged]
    await anyio.to_thread.run_sync(lambda: store.save_anomalies(flagged, now=at))
    alerts = []
    for a in flagged:
        alert = alert_for_anomaly(a, now=at)
        if await anyio.to_thread.run_sync(store.add_alert, alert):
            alerts.append(alert.id)
    await anyio.to_thread.run_sync(store.mark_pm_checked, [t.trade_id for t in pending])
    return BatchResult(
        checked=len(pending), detected=len(flagged), anomalies=flagged, alerts=alerts
    )


async def analyze_trade(
    store: Store,
    trade: PolymarketTrade,
    *,
    lookback: int = DAY,
    config: AnomalyConfig | None = None,
) -> AnomalyScore:
    """Score one trade on demand against the stored trades around it (nothing is saved)."""
    context = await anyio.to_thread.run_sync(
        lambda: store.pm_trades(since=trade.timestamp - lookback, until=trade.timestamp + lookback)
    )
    return score_trades([trade], context, config=config)[0]


async def analyze_trade_by_id(
    store: Store,
    trade_id: str,
    *,
    lookback: int = DAY,
    config: AnomalyConfig | None = None,
) -> AnomalyScore:
    """05's analysis worker: score a stored trade; raises ProcessorsError if it is unknown."""
    trade = await anyio.to_thread.run_sync(store.pm_trade, trade_id)
    if trade is None:
        raise ProcessorsError(f"Transaction {trade_id} not found")
    return await analyze_trade(store, trade, lookback=lookback, config=config)


async def deliver_alert(
    store: Store, sink: AlertSink, alert_id: str, *, now: int | None = None
) -> bool:
    """Send a stored alert unless already sent; returns True if it was sent by this call.

    Raises ProcessorsError if there is no such alert, and the sink's ProviderError when
    delivery fails (the alert stays pending if the error is retryable, else is marked failed).
    """
    row = await anyio.to_thread.run_sync(store.alert, alert_id)
    if row is None:
        raise ProcessorsError(f"no alert {alert_id!r}")
    alert, status = row
    if status == "sent":
        return False
    try:
        await sink.send(alert)
    except ProviderError as exc:
        if not exc.retryable:
            error = str(exc)
            await anyio.to_thread.run_sync(
                lambda: store.mark_alert(alert_id, sent=False, error=error, now=now)
            )
        raise
    await anyio.to_thread.run_sync(lambda: store.mark_alert(alert_id, sent=True, now=now))
    return True
