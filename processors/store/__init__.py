"""Where the application's data lives: SQLite (WAL) behind ``Store``, its schema migrations."""

from __future__ import annotations

from processors.store.sqlite import Store, WalletState, WalletStatus

__all__ = ["Store", "WalletState", "WalletStatus"]
