"""Deterministic job ids (01 "Job Deduplication Strategy", 02 "Add Job ID Generator").

Enqueueing twice with the same id returns the existing job, so the same request never runs
twice. Every id fits streamq's rule: 1..200 characters of ``[A-Za-z0-9._:@-]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = [
    "analysis_job_id",
    "balances_job_id",
    "bulk_job_id",
    "dashboard_job_id",
    "enrichment_job_id",
    "pnl_job_id",
    "similarity_job_id",
    "sync_job_id",
]


def _md5(text: str, n: int) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:n]


def sync_job_id(wallet: str, request_id: str = "default") -> str:
    return f"sync-{wallet}-{_md5(request_id, 8)}"


def pnl_job_id(wallet: str, depends_on_sync: str | None = None) -> str:
    return f"pnl-{wallet}-{depends_on_sync or 'standalone'}"


def similarity_job_id(wallets: Iterable[str], request_id: str) -> str:
    return f"similarity-{_md5('-'.join(sorted(wallets)) + request_id, 12)}"


def dashboard_job_id(wallet: str, request_id: str) -> str:
    return f"dashboard-{_md5(f'dashboard-{wallet}-{request_id}', 8)}"


def balances_job_id(wallet: str) -> str:
    # 03: "bal:{wallet}" — one balance fetch per wallet at a time, whoever asks.
    return f"bal:{wallet}"


def enrichment_job_id(wallets: Iterable[str], request_id: str) -> str:
    return f"enrich-{_md5(','.join(sorted(wallets)) + request_id, 12)}"


def bulk_job_id(wallets: Iterable[str], types: Iterable[str], request_id: str) -> str:
    key = "-".join(sorted(wallets)) + "|" + ",".join(sorted(types)) + request_id
    return f"bulk-{_md5(key, 12)}"


def analysis_job_id(kind: str, wallet: str, depends_on_sync: str | None = None) -> str:
    """``pnl-{wallet}-{sync}`` as 01 spells it; the other analyses by the same pattern."""
    if kind == "pnl":
        return pnl_job_id(wallet, depends_on_sync)
    return f"{kind}-{wallet}-{depends_on_sync or 'standalone'}"
