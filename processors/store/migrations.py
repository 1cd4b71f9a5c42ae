"""The store's schema, as ordered migrations applied by :func:`migrate`.

``PRAGMA user_version`` records the last migration applied. Append new migrations at the end;
never edit one that has shipped. Result documents are stored as JSON text (msgspec-encoded
Structs) next to the columns that queries filter or sort on, so ``sqlite3`` shows them readably.
"""

from __future__ import annotations

import sqlite3

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS: list[str] = [
    # 1: wallets and their swaps (the plans' Wallet and SwapAnalysisInput tables)
    """
    CREATE TABLE wallets (
        address TEXT PRIMARY KEY,
        first_seen INTEGER NOT NULL,
        last_synced_at INTEGER,
        newest_signature TEXT,
        swap_count INTEGER NOT NULL DEFAULT 0,
        last_analyzed_at INTEGER
    );
    CREATE TABLE swaps (
        wallet TEXT NOT NULL,
        signature TEXT NOT NULL,
        mint TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        token_amount INTEGER NOT NULL,
        decimals INTEGER NOT NULL,
        sol_lamports INTEGER NOT NULL,
        fee_lamports INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        PRIMARY KEY (wallet, signature, mint)
    );
    CREATE INDEX swaps_by_wallet_time ON swaps (wallet, timestamp);
    """,
    # 2: analysis results
    """
    CREATE TABLE pnl_reports (
        wallet TEXT PRIMARY KEY,
        report TEXT NOT NULL,
        net_sol REAL NOT NULL,
        computed_at INTEGER NOT NULL
    );
    CREATE TABLE token_pnl (
        wallet TEXT NOT NULL,
        mint TEXT NOT NULL,
        realised_sol REAL NOT NULL,
        unrealised_sol REAL NOT NULL,
        fees_sol REAL NOT NULL,
        net_sol REAL NOT NULL,
        PRIMARY KEY (wallet, mint)
    );
    CREATE TABLE behavior (
        wallet TEXT PRIMARY KEY,
        classification TEXT NOT NULL,
        metrics TEXT NOT NULL,
        computed_at INTEGER NOT NULL
    );
    CREATE TABLE token_info (
        mint TEXT PRIMARY KEY,
        symbol TEXT NOT NULL,
        price_usd REAL,
        info TEXT NOT NULL,
        fetched_at INTEGER NOT NULL
    );
    CREATE TABLE similarity_results (
        request_id TEXT PRIMARY KEY,
        wallets TEXT NOT NULL,
        result TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    """,
    # 3: Polymarket
    """
    CREATE TABLE pm_trades (
        trade_id TEXT PRIMARY KEY,
        wallet TEXT NOT NULL,
        condition_id TEXT NOT NULL,
        timestamp INTEGER NOT NULL,
        trade TEXT NOT NULL,
        checked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX pm_trades_by_time ON pm_trades (timestamp);
    CREATE INDEX pm_trades_unchecked ON pm_trades (checked, timestamp);
    CREATE TABLE pm_whales (
        wallet TEXT PRIMARY KEY,
        rank INTEGER NOT NULL,
        volume_usd REAL NOT NULL,
        whale TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE anomalies (
        trade_id TEXT PRIMARY KEY,
        wallet TEXT NOT NULL,
        condition_id TEXT NOT NULL,
        score REAL NOT NULL,
        anomaly TEXT NOT NULL,
        detected_at INTEGER NOT NULL
    );
    CREATE INDEX anomalies_by_time ON anomalies (detected_at);
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        alert TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        sent_at INTEGER
    );
    CREATE INDEX alerts_by_status ON alerts (status, created_at);
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations ``conn`` lacks, each in its own transaction; returns the version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        # executescript commits first; BEGIN IMMEDIATE makes two processes migrating at once
        # take turns, and the second sees the bumped user_version and applies nothing twice.
        conn.execute("BEGIN IMMEDIATE")
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if current >= number:
            conn.execute("COMMIT")
            continue
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    return int(conn.execute("PRAGMA user_version").fetchone()[0])
