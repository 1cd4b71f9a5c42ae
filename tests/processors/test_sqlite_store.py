from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from processors.analysis.behavior import analyze_behavior
from processors.analysis.pnl import compute_pnl
from processors.analysis.polymarket import rank_whales, score_trades
from processors.analysis.similarity import analyze_similarity
from processors.models import Alert, TokenInfo
from processors.providers.sim_polymarket import PolymarketWorld
from processors.providers.sim_world import SimWorld
from processors.store import Store
from processors.store.migrations import MIGRATIONS

WORLD = SimWorld()
WALLETS = list(WORLD.wallets)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "app.db")
    yield s
    s.close()


def test_file_store_is_wal_and_migrated(store: Store, tmp_path: Path) -> None:
    assert store.journal_mode() == "wal"
    assert store.version == len(MIGRATIONS)
    conn = sqlite3.connect(tmp_path / "app.db")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert {
        "wallets",
        "swaps",
        "pnl_reports",
        "token_pnl",
        "behavior",
        "token_info",
        "similarity_results",
        "pm_trades",
        "pm_whales",
        "anomalies",
        "alerts",
    } <= tables
    store.close()
    again = Store(tmp_path / "app.db")  # reopening applies nothing twice
    assert again.version == len(MIGRATIONS)
    again.close()


def test_sync_records_swaps_once_and_wallet_status(store: Store) -> None:
    w = WALLETS[0]
    swaps = WORLD.swaps(w)
    assert store.wallet_statuses([w], fresh_for=60, now=1000)[0].status == "MISSING"
    assert store.record_sync(w, swaps, newest_signature=swaps[-1].signature, now=1000) == len(swaps)
    assert store.record_sync(w, swaps, now=1010) == 0  # duplicates ignored
    assert store.swaps(w) == swaps
    assert store.newest_signature(w) == swaps[-1].signature  # kept when a sync brings nothing
    fresh, stale = store.wallet_statuses([w], fresh_for=60, now=1070)[0], None
    assert fresh.status == "FRESH" and fresh.last_synced_at == 1010
    assert fresh.swap_count == len(swaps)
    stale = store.wallet_statuses([w], fresh_for=60, now=1071)[0]
    assert stale.status == "STALE"
    store.ensure_wallet(WALLETS[1], now=5)
    assert store.wallet_statuses([WALLETS[1]], fresh_for=60)[0].status == "MISSING"


def test_results_roundtrip(store: Store) -> None:
    w = WALLETS[5]
    swaps = WORLD.swaps(w)
    store.record_sync(w, swaps)
    report = compute_pnl(w, swaps, {m: WORLD.current_price(m) for m in {s.mint for s in swaps}})
    store.save_pnl(report)
    assert store.pnl(w) == report
    assert store.pnl("nobody") is None
    metrics = analyze_behavior(w, swaps)
    store.save_behavior(metrics)
    assert store.behavior(w) == metrics
    sim = analyze_similarity({a: WORLD.swaps(a) for a in WALLETS[:4]})
    store.save_similarity("req-1", sim)
    assert store.similarity("req-1") == sim
    info = TokenInfo(mint="M1", symbol="M", price_usd=1.5, fetched_at=7)
    store.save_token_infos([info])
    assert store.token_infos(["M1", "M2"]) == {"M1": info}


def test_polymarket_tables(store: Store) -> None:
    world = PolymarketWorld()
    trades = world.trades[:300]
    assert store.add_pm_trades(trades) == 300
    assert store.add_pm_trades(trades[:10]) == 0
    assert store.pm_trades() == trades
    cut = trades[150].timestamp
    assert store.pm_trades(since=cut) == [t for t in trades if t.timestamp >= cut]
    store.mark_pm_checked(t.trade_id for t in trades[:100])
    assert store.pm_trades(unchecked_only=True) == trades[100:]
    whales = rank_whales(trades, top=5)
    store.replace_whales(whales)
    store.replace_whales(whales[:3])
    assert store.whales() == whales[:3]
    flagged = score_trades(trades[:5])
    assert store.save_anomalies(flagged, now=50) == 5
    assert store.save_anomalies(flagged, now=60) == 0
    assert [a.trade_id for a in store.anomalies()] == [
        a.trade_id for a in sorted(flagged, key=lambda a: (-a.score, a.trade_id))
    ]


def test_alert_lifecycle(store: Store) -> None:
    alert = Alert(id="x1", kind="k", severity="warning", title="t", description="d", created_at=3)
    assert store.add_alert(alert)
    assert not store.add_alert(alert)
    assert store.pending_alerts() == [alert]
    store.mark_alert("x1", sent=True, now=9)
    assert store.alert("x1") == (alert, "sent")
    assert store.pending_alerts() == []
    assert store.alert("nope") is None


def test_threads_write_concurrently_without_losing_rows(store: Store) -> None:
    errors: list[BaseException] = []

    def work(address: str) -> None:
        try:
            store.record_sync(address, WORLD.swaps(address))
            store.save_pnl(compute_pnl(address, store.swaps(address)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(a,)) for a in WALLETS[:12]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for a in WALLETS[:12]:
        assert store.swaps(a) == WORLD.swaps(a)
        assert store.pnl(a) is not None


def test_memory_store_is_shared_across_threads() -> None:
    store = Store()
    t = threading.Thread(target=store.record_sync, args=(WALLETS[0], WORLD.swaps(WALLETS[0])))
    t.start()
    t.join()
    assert store.swaps(WALLETS[0]) == WORLD.swaps(WALLETS[0])
    store.close()
