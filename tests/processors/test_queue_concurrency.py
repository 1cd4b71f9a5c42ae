"""The application declares the plans' per-queue concurrency, so every worker of it (streamq
worker, streamq run, compose, systemd) applies balances 50, analysis 10, enrichment 20."""

from __future__ import annotations

import streamq
from processors.app import build_app
from processors.settings import Settings


def test_the_app_declares_the_plans_limits_and_one_worker_applies_them() -> None:
    app = build_app(Settings(queue_prefix="c-", queue_suffix="-z", schedules=False))
    assert app.queue_concurrency["c-wallet-operations-z"] == 50
    assert app.queue_concurrency["c-analysis-operations-z"] == 10
    assert app.queue_concurrency["c-enrichment-operations-z"] == 20
    # What `streamq worker processors.app:app --concurrency 50,c-analysis-operations-z=4` builds.
    worker = streamq.Worker(app, concurrency=50, queue_concurrency={"c-analysis-operations-z": 4})
    assert worker.limits["c-wallet-operations-z"] == 50
    assert worker.limits["c-analysis-operations-z"] == 4
    assert worker.limits["c-enrichment-operations-z"] == 20
    assert worker.slots_of["c-enrichment-operations-z"].capacity == 20
