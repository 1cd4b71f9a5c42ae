"""The wiring follows the plans' configuration: every job's queue, lane, timeout, attempts,
backoff and lease come from processors.config; ids are deterministic; errors map onto the
broker's signals; settings come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

import streamq
from processors.app import build_app, queue_workers
from processors.config import JOBS, QUEUES
from processors.errors import InsufficientData, InvalidWalletAddress, ProviderError, RateLimited
from processors.ids import dashboard_job_id, similarity_job_id, sync_job_id
from processors.jobs.signals import mapped_errors
from processors.runtime import runtime_of
from processors.settings import Settings


def test_every_plan_job_is_registered_as_configured() -> None:
    s = Settings(queue_prefix="p-", queue_suffix="-x", backoff_scale=1.0, schedules=False)
    app = build_app(s)
    assert set(app.tasks) == set(JOBS)
    assert set(app.queues_of_tasks()) == {f"p-{q}-x" for q in QUEUES}
    for name, spec in JOBS.items():
        task = app.tasks[name]
        assert task.queue == f"p-{spec.queue}-x"
        assert task.priority == spec.priority
        assert task.timeout == spec.timeout
        assert task.max_attempts == spec.max_attempts
        assert task.backoff.kind == spec.backoff and task.backoff.base == spec.backoff_delay
        assert task.lease == (spec.stale_after or 30.0)
    # The balance cache: a fetch's result outlives the 30 s cache window only briefly.
    assert app.tasks["fetch-balances"].result_ttl == 60.0
    workers = {w.queues[0]: w.concurrency for w in queue_workers(app)}
    assert workers == {f"p-{q}-x": spec.concurrency for q, spec in QUEUES.items()}
    assert runtime_of(app).settings is s


def test_backoff_scale_shrinks_every_backoff() -> None:
    app = build_app(Settings(backoff_scale=0.01, queue_suffix="-y", schedules=False))
    assert app.tasks["sync-wallet"].backoff.base == pytest.approx(0.02)


def test_job_ids_are_deterministic_per_plan() -> None:
    w1, w2 = "A" * 43, "B" * 43
    assert sync_job_id(w1, "r1") == sync_job_id(w1, "r1") != sync_job_id(w1, "r2")
    assert dashboard_job_id(w1, "r1") != dashboard_job_id(w2, "r1")
    assert similarity_job_id([w1, w2], "r") == similarity_job_id([w2, w1], "r")
    assert similarity_job_id([w1, w2], "r") != similarity_job_id([w1, w2], "s")
    for jid in (sync_job_id(w1, "r"), dashboard_job_id(w1, "r"), similarity_job_id([w1], "r")):
        assert streamq.validate_job_id(jid) == jid


def _raised(exc: Exception) -> BaseException:
    with pytest.raises(BaseException) as info, mapped_errors():
        raise exc
    return info.value


def test_domain_errors_map_onto_broker_signals() -> None:
    assert isinstance(_raised(InvalidWalletAddress(["x"])), streamq.Fatal)
    assert isinstance(_raised(InsufficientData("too few")), streamq.Fatal)
    assert isinstance(_raised(ProviderError("400", provider="p", retryable=False)), streamq.Fatal)
    transient = ProviderError("503", provider="p", retryable=True)
    assert _raised(transient) is transient  # retried with the task's backoff
    retry = _raised(RateLimited("429", provider="p", retry_after=2.5))
    assert isinstance(retry, streamq.Retry) and retry.delay == 2.5


def test_settings_from_the_environment(tmp_path: Path) -> None:
    s = Settings.from_env({"STREAMQ_DATA_DIR": str(tmp_path), "PROCESSORS_QUEUE_SUFFIX": "-b"})
    assert s.store_path == str(tmp_path / "processors.db")
    assert s.providers.kind == "simulator" and s.queue("wallet-operations") == "wallet-operations-b"
    assert Settings.from_env({}).store_path == ".streamq/processors.db"
