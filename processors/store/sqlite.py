"""The application's data in SQLite (WAL): wallets, swaps, analysis results, Polymarket data.

The API is synchronous and thread-safe: each thread gets its own connection to a file database
(WAL lets readers run beside the writer, across processes too); an in-memory database is one
connection behind a lock. Async callers run these methods with ``anyio.to_thread.run_sync``.
Every method that writes several rows does so in one transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TypeVar

import msgspec

from processors.analysis.behavior import BehaviorMetrics
from processors.analysis.pnl import PnlReport
from processors.analysis.polymarket import AnomalyScore, Whale
from processors.analysis.similarity import SimilarityResult
from processors.models import Alert, PolymarketTrade, Swap, TokenInfo
from processors.store.migrations import migrate

__all__ = ["Store", "WalletState", "WalletStatus"]

WalletState = Literal["FRESH", "STALE", "MISSING"]
T = TypeVar("T")
_encode = msgspec.json.Encoder().encode


class WalletStatus(msgspec.Struct, frozen=True, kw_only=True):
    address: str
    status: WalletState
    last_synced_at: int | None
    swap_count: int


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


class Store:
    """SQLite store; ``path`` is a file path or ``":memory:"``."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._memory = self.path == ":memory:"
        self._local = threading.local()
        self._lock = threading.RLock()
        self._all: list[sqlite3.Connection] = []
        self._shared: sqlite3.Connection | None = None
        with self._connection() as conn:
            self.version = migrate(conn)

    # -- connections ---------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        # Each connection is used by one thread at a time (its own, or under the lock); the check
        # is off so that close() can close them all from whichever thread shuts down.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA foreign_keys = ON")
        if not self._memory:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable across crashes of the app in WAL
        self._all.append(conn)
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._memory:
            with self._lock:
                if self._shared is None:
                    self._shared = self._open()
                yield self._shared
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                conn = self._local.conn = self._open()
        yield conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._connection() as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close every connection this store opened (from any thread)."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
            self._shared = None
            self._local = threading.local()

    def journal_mode(self) -> str:
        return str(self._query("PRAGMA journal_mode")[0][0])

    # -- wallets and swaps ---------------------------------------------------------------------

    def record_sync(
        self,
        wallet: str,
        swaps: Iterable[Swap],
        *,
        newest_signature: str | None = None,
        now: int | None = None,
    ) -> int:
        """Store a sync's swaps (duplicates ignored) and mark the wallet synced; returns new rows."""
        at = _now(now)
        rows = [
            (
                s.wallet,
                s.signature,
                s.mint,
                s.side,
                s.token_amount,
                s.decimals,
                s.sol_lamports,
                s.fee_lamports,
                s.timestamp,
            )
            for s in swaps
        ]
        with self._tx() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO swaps VALUES (?,?,?,?,?,?,?,?,?)", rows)
            added = conn.total_changes - before
            conn.execute(
                "INSERT INTO wallets (address, first_seen, last_synced_at, newest_signature,"
                " swap_count) VALUES (?, ?, ?, ?, (SELECT count(*) FROM swaps WHERE wallet = ?))"
                " ON CONFLICT (address) DO UPDATE SET last_synced_at = excluded.last_synced_at,"
                " newest_signature = coalesce(excluded.newest_signature, newest_signature),"
                " swap_count = excluded.swap_count",
                (wallet, at, at, newest_signature, wallet),
            )
        return added

    def ensure_wallet(self, wallet: str, *, now: int | None = None) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO wallets (address, first_seen) VALUES (?, ?)",
                (wallet, _now(now)),
            )

    def newest_signature(self, wallet: str) -> str | None:
        rows = self._query("SELECT newest_signature FROM wallets WHERE address = ?", (wallet,))
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def wallet_statuses(
        self, addresses: Sequence[str], *, fresh_for: float, now: int | None = None
    ) -> list[WalletStatus]:
        """FRESH if synced within ``fresh_for`` seconds, STALE if earlier, MISSING if never."""
        at = _now(now)
        known: dict[str, tuple[int | None, int]] = {}
        for i in range(0, len(addresses), 500):
            chunk = list(addresses[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for addr, synced, count in self._query(
                f"SELECT address, last_synced_at, swap_count FROM wallets WHERE address IN ({marks})",
                chunk,
            ):
                known[str(addr)] = (None if synced is None else int(str(synced)), int(str(count)))
        out = []
        for a in addresses:
            synced, count = known.get(a, (None, 0))
            state: WalletState = (
                "MISSING" if synced is None else "FRESH" if at - synced <= fresh_for else "STALE"
            )
            out.append(
                WalletStatus(address=a, status=state, last_synced_at=synced, swap_count=count)
            )
        return out

    def swaps(self, wallet: str) -> list[Swap]:
        """The wallet's stored swaps, oldest first."""
        rows = self._query(
            "SELECT wallet, signature, mint, side, token_amount, decimals, sol_lamports,"
            " fee_lamports, timestamp FROM swaps WHERE wallet = ? ORDER BY timestamp, signature",
            (wallet,),
        )
        keys = (
            "wallet",
            "signature",
            "mint",
            "side",
            "token_amount",
            "decimals",
            "sol_lamports",
            "fee_lamports",
            "timestamp",
        )
        return [msgspec.convert(dict(zip(keys, r, strict=True)), Swap) for r in rows]

    # -- analysis results ----------------------------------------------------------------------

    def save_pnl(self, report: PnlReport, *, now: int | None = None) -> None:
        at = _now(now)
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO pnl_reports VALUES (?, ?, ?, ?)",
                (report.wallet, _encode(report).decode(), report.stats.net_sol, at),
            )
            conn.execute("DELETE FROM token_pnl WHERE wallet = ?", (report.wallet,))
            conn.executemany(
                "INSERT INTO token_pnl VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (report.wallet, t.mint, t.realised_sol, t.unrealised_sol, t.fees_sol, t.net_sol)
                    for t in report.tokens
                ],
            )
            conn.execute(
                "UPDATE wallets SET last_analyzed_at = ? WHERE address = ?", (at, report.wallet)
            )

    def pnl(self, wallet: str) -> PnlReport | None:
        return self._one("SELECT report FROM pnl_reports WHERE wallet = ?", (wallet,), PnlReport)

    def save_behavior(self, metrics: BehaviorMetrics, *, now: int | None = None) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO behavior VALUES (?, ?, ?, ?)",
                (metrics.wallet, metrics.classification, _encode(metrics).decode(), _now(now)),
            )

    def behavior(self, wallet: str) -> BehaviorMetrics | None:
        return self._one(
            "SELECT metrics FROM behavior WHERE wallet = ?", (wallet,), BehaviorMetrics
        )

    def save_token_infos(self, infos: Iterable[TokenInfo]) -> None:
        rows = [(i.mint, i.symbol, i.price_usd, _encode(i).decode(), i.fetched_at) for i in infos]
        with self._tx() as conn:
            conn.executemany("INSERT OR REPLACE INTO token_info VALUES (?, ?, ?, ?, ?)", rows)

    def token_infos(self, mints: Sequence[str]) -> dict[str, TokenInfo]:
        out: dict[str, TokenInfo] = {}
        for i in range(0, len(mints), 500):
            chunk = list(mints[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for (doc,) in self._query(
                f"SELECT info FROM token_info WHERE mint IN ({marks})", chunk
            ):
                info = msgspec.json.decode(str(doc), type=TokenInfo)
                out[info.mint] = info
        return out

    def stale_token_mints(self, fetched_before: int, *, limit: int) -> list[str]:
        """Up to ``limit`` stored tokens fetched before ``fetched_before``, oldest first."""
        rows = self._query(
            "SELECT mint FROM token_info WHERE fetched_at < ? ORDER BY fetched_at, mint LIMIT ?",
            (fetched_before, limit),
        )
        return [str(m) for (m,) in rows]

    def delete_token_infos_before(self, fetched_before: int) -> int:
        """Forgets tokens fetched before ``fetched_before``; returns how many."""
        with self._tx() as conn:
            cur = conn.execute("DELETE FROM token_info WHERE fetched_at < ?", (fetched_before,))
            return int(cur.rowcount)

    def save_similarity(
        self, request_id: str, result: SimilarityResult, *, now: int | None = None
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO similarity_results VALUES (?, ?, ?, ?)",
                (request_id, _encode(result.wallets).decode(), _encode(result).decode(), _now(now)),
            )

    def similarity(self, request_id: str) -> SimilarityResult | None:
        return self._one(
            "SELECT result FROM similarity_results WHERE request_id = ?",
            (request_id,),
            SimilarityResult,
        )

    def similarity_created_at(self, request_id: str) -> int | None:
        rows = self._query(
            "SELECT created_at FROM similarity_results WHERE request_id = ?", (request_id,)
        )
        return int(str(rows[0][0])) if rows else None

    def delete_similarity_before(self, created_before: int) -> int:
        """Forgets similarity results created before ``created_before``; returns how many."""
        with self._tx() as conn:
            cur = conn.execute(
                "DELETE FROM similarity_results WHERE created_at < ?", (created_before,)
            )
            return int(cur.rowcount)

    def _one(self, sql: str, params: Sequence[object], kind: type[T]) -> T | None:
        rows = self._query(sql, params)
        return msgspec.json.decode(str(rows[0][0]), type=kind) if rows else None

    # -- Polymarket ----------------------------------------------------------------------------

    def add_pm_trades(self, trades: Iterable[PolymarketTrade]) -> int:
        """Store trades not seen before (unchecked); returns how many were new."""
        rows = [
            (t.trade_id, t.wallet, t.condition_id, t.timestamp, _encode(t).decode()) for t in trades
        ]
        with self._tx() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO pm_trades (trade_id, wallet, condition_id, timestamp, trade)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            return conn.total_changes - before

    def pm_trades(
        self,
        *,
        since: int = 0,
        until: int | None = None,
        unchecked_only: bool = False,
        limit: int | None = None,
    ) -> list[PolymarketTrade]:
        """Stored trades with ``since <= timestamp < until``, oldest first."""
        sql = "SELECT trade FROM pm_trades WHERE timestamp >= ?"
        params: list[object] = [since]
        if until is not None:
            sql += " AND timestamp < ?"
            params.append(until)
        if unchecked_only:
            sql += " AND checked = 0"
        sql += " ORDER BY timestamp, trade_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        dec = msgspec.json.Decoder(PolymarketTrade)
        return [dec.decode(str(r[0])) for r in self._query(sql, params)]

    def pm_trade(self, trade_id: str) -> PolymarketTrade | None:
        return self._one(
            "SELECT trade FROM pm_trades WHERE trade_id = ?", (trade_id,), PolymarketTrade
        )

    def mark_pm_checked(self, trade_ids: Iterable[str]) -> None:
        with self._tx() as conn:
            conn.executemany(
                "UPDATE pm_trades SET checked = 1 WHERE trade_id = ?", [(i,) for i in trade_ids]
            )

    def replace_whales(self, whales: Sequence[Whale], *, now: int | None = None) -> None:
        """Replace the whale ranking with ``whales`` (one transaction: readers see old or new)."""
        at = _now(now)
        with self._tx() as conn:
            conn.execute("DELETE FROM pm_whales")
            conn.executemany(
                "INSERT INTO pm_whales VALUES (?, ?, ?, ?, ?)",
                [(w.wallet, w.rank, w.volume_usd, _encode(w).decode(), at) for w in whales],
            )

    def whales(self, limit: int = 100) -> list[Whale]:
        dec = msgspec.json.Decoder(Whale)
        rows = self._query("SELECT whale FROM pm_whales ORDER BY rank LIMIT ?", (limit,))
        return [dec.decode(str(r[0])) for r in rows]

    def save_anomalies(self, anomalies: Iterable[AnomalyScore], *, now: int | None = None) -> int:
        """Store flagged anomalies not stored before; returns how many were new."""
        at = _now(now)
        rows = [
            (a.trade_id, a.wallet, a.condition_id, a.score, _encode(a).decode(), at)
            for a in anomalies
        ]
        with self._tx() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO anomalies VALUES (?, ?, ?, ?, ?, ?)", rows)
            return conn.total_changes - before

    def anomalies(self, *, since: int = 0, limit: int = 1000) -> list[AnomalyScore]:
        dec = msgspec.json.Decoder(AnomalyScore)
        rows = self._query(
            "SELECT anomaly FROM anomalies WHERE detected_at >= ? ORDER BY score DESC, trade_id"
            " LIMIT ?",
            (since, limit),
        )
        return [dec.decode(str(r[0])) for r in rows]

    def add_alert(self, alert: Alert) -> bool:
        """Store a pending alert; False if one with that id exists (alerts are idempotent)."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO alerts (id, kind, alert, created_at) VALUES (?, ?, ?, ?)",
                (alert.id, alert.kind, _encode(alert).decode(), alert.created_at),
            )
            return cur.rowcount == 1

    def alert(self, alert_id: str) -> tuple[Alert, str] | None:
        """The alert and its status ("pending", "sent", "failed")."""
        rows = self._query("SELECT alert, status FROM alerts WHERE id = ?", (alert_id,))
        if not rows:
            return None
        return msgspec.json.decode(str(rows[0][0]), type=Alert), str(rows[0][1])

    def pending_alerts(self, limit: int = 100) -> list[Alert]:
        dec = msgspec.json.Decoder(Alert)
        rows = self._query(
            "SELECT alert FROM alerts WHERE status = 'pending' ORDER BY created_at, id LIMIT ?",
            (limit,),
        )
        return [dec.decode(str(r[0])) for r in rows]

    def mark_alert(
        self, alert_id: str, *, sent: bool, error: str | None = None, now: int | None = None
    ) -> None:
        """Record a delivery attempt: sent, or failed for good (``sent=False``)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE alerts SET status = ?, attempts = attempts + 1, last_error = ?,"
                " sent_at = ? WHERE id = ?",
                ("sent" if sent else "failed", error, _now(now) if sent else None, alert_id),
            )
