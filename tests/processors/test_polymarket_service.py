from __future__ import annotations

import pytest

from processors.errors import ProcessorsError, ProviderError
from processors.providers.sim_polymarket import PolymarketWorld
from processors.providers.simulator import (
    Faults,
    SimulatedAlertSink,
    SimulatedPolymarket,
)
from processors.services.polymarket import (
    analyze_trade,
    analyze_trade_by_id,
    deliver_alert,
    detect_anomalies,
    ingest_trades,
    update_whales,
)
from processors.store import Store

pytestmark = pytest.mark.anyio


async def test_ingest_detect_alert_pipeline() -> None:
    world = PolymarketWorld()
    pm = SimulatedPolymarket(world)
    store = Store()
    now = world.config.now
    assert await ingest_trades(store, pm, since=now - 86_400, until=now, page_size=700) == len(
        world.trades
    )
    assert await ingest_trades(store, pm, since=now - 86_400, until=now) == 0

    batch = await detect_anomalies(store, now=now)
    assert batch.checked == len(world.trades)
    found = {a.trade_id for a in batch.anomalies}
    truth = set(world.anomalies)
    recall = len(found & truth) / len(truth)
    precision = len(found & truth) / len(found)
    print(f"batch: recall {recall:.3f}, precision {precision:.3f}, alerts {len(batch.alerts)}")
    assert recall >= 0.9 and precision >= 0.9
    assert len(batch.alerts) == batch.detected == len(store.anomalies())
    assert (await detect_anomalies(store, now=now)).checked == 0  # all marked checked

    whales = await update_whales(store, now=now, top=20)
    assert {w.wallet for w in whales[: len(world.whales)]} == world.whales
    assert store.whales(limit=3) == whales[:3]

    sink = SimulatedAlertSink()
    first = batch.alerts[0]
    assert await deliver_alert(store, sink, first, now=now)
    assert not await deliver_alert(store, sink, first, now=now)  # already sent: once only
    assert [a.id for a in sink.delivered] == [first]
    assert store.alert(first)[1] == "sent"  # type: ignore[index]
    with pytest.raises(ProcessorsError, match="no alert"):
        await deliver_alert(store, sink, "missing")


async def test_failed_delivery_stays_pending_when_retryable() -> None:
    world = PolymarketWorld()
    store = Store()
    await ingest_trades(store, SimulatedPolymarket(world), since=0)
    batch = await detect_anomalies(store, now=world.config.now)
    sink = SimulatedAlertSink(Faults(error_rate=1.0))
    with pytest.raises(ProviderError) as info:
        await deliver_alert(store, sink, batch.alerts[0])
    assert info.value.retryable
    assert store.alert(batch.alerts[0])[1] == "pending"  # type: ignore[index]


async def test_analyze_one_trade_on_demand() -> None:
    world = PolymarketWorld()
    store = Store()
    await ingest_trades(store, SimulatedPolymarket(world), since=0)
    anomaly_id, kind = next(iter(world.anomalies.items()))
    trade = next(t for t in world.trades if t.trade_id == anomaly_id)
    score = await analyze_trade(store, trade)
    assert score.flagged, kind
    normal = next(t for t in world.trades if t.trade_id not in world.anomalies)
    assert not (await analyze_trade(store, normal)).flagged
    assert (await analyze_trade_by_id(store, anomaly_id)).flagged
    with pytest.raises(ProcessorsError, match="not found"):
        await analyze_trade_by_id(store, "0xnothing")
