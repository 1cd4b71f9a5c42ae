"""The processors on streamq: every queue and job of the plans, registered on one App.

``streamq worker processors.app:app`` runs the handlers with the plans' concurrency per queue
(balances 50, analysis 10, enrichment 20, ..., declared on the App; ``--concurrency
queue=N`` overrides one; ``python -m processors.app`` runs one worker per queue instead),
``streamq serve --app processors.app:app`` serves the HTTP API (plus ``http_operations``, the
application's ``/api/v1/...`` endpoints), ``streamq run`` does both and runs
``demo_workload``; ``example_job`` is the job its curl line offers.

Importing this module builds nothing: ``app`` (and ``example_job``) are made on first access
by ``default_app()``, from the environment's settings. ``build_app(settings)`` builds an
independent deployment: its own queue names (prefix/suffix), SQLite file and providers —
which is how tests run side by side.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import streamq
from processors.config import JOBS, QUEUES, JobSpec
from processors.jobs import register_jobs
from processors.jobs.coordination import ensure_setup, schedule
from processors.providers.base import Providers
from processors.runtime import Runtime, runtime_of
from processors.settings import Settings
from processors.store import Store

# ``app`` and ``example_job`` are module attributes too, made on first access (``__getattr__``).
__all__ = [
    "Settings",
    "build_app",
    "default_app",
    "demo_workload",
    "ensure_setup",
    "example_job_of",
    "http_operations",
    "queue_workers",
    "recurring_jobs",
    "run_queue_workers",
]

log = logging.getLogger(__name__)

# A wallet any visitor can try (the simulator gives every valid Solana address its own
# deterministic history).
EXAMPLE_WALLET = "8vX37JFPDqJM5Gk8xson2kJ4Vph4jvuSqpcjqnGsFpPw"


def build_app(
    settings: Settings | None = None,
    *,
    app: streamq.App | None = None,
    store: Store | None = None,
    providers: Providers | None = None,
) -> streamq.App:
    """A streamq App with every processors task registered (on ``app`` if given, else a new
    one on ``settings.redis_url``); ``store``/``providers`` replace the ones settings describe."""
    settings = settings if settings is not None else Settings.from_env()
    app = app if app is not None else streamq.App(settings.app_name, redis_url=settings.redis_url)
    rt = Runtime(app, settings, store=store, providers=providers)
    register_jobs(app, rt)
    # The plans' concurrency per queue, applied by every worker of this app (streamq worker,
    # streamq run, compose, systemd) unless --concurrency queue=N says otherwise.
    for queue_name, queue_spec in QUEUES.items():
        app.set_concurrency(rt.queue(queue_name), queue_spec.concurrency)
    for name, spec in recurring_jobs().items() if settings.schedules else ():
        every = settings.schedule_every.get(name)
        if every is not None:  # a faster clock for this deployment (tests, demos)
            schedule(app, name, cron=None, every=every, overlap=False)
        else:
            schedule(app, name, cron=spec.cron, every=spec.every, overlap=False)
    return app


@functools.cache
def default_app() -> streamq.App:
    """The deployment the environment describes (``Settings.from_env()``), built once."""
    return build_app(Settings.from_env())


def example_job_of(app: streamq.App) -> dict[str, Any]:
    """What ``streamq run`` offers as its curl line: a wallet sync of ``EXAMPLE_WALLET``."""
    return {
        "queue": app.task_def(None, "sync-wallet").queue,
        "name": "sync-wallet",
        "payload": {"wallet": EXAMPLE_WALLET},
    }


def __getattr__(name: str) -> Any:
    # ``app`` and ``example_job`` are built on first access, not at import (PEP 562).
    if name == "app":
        return default_app()
    if name == "example_job":
        return example_job_of(default_app())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def recurring_jobs() -> dict[str, JobSpec]:
    """The plans' recurring jobs: the maintenance schedules (cache cleanup daily at 02:00,
    token metadata refresh every 6 hours), the hourly whale update and the 30 s anomaly batch."""
    return {n: s for n, s in JOBS.items() if s.cron is not None or s.every is not None}


async def demo_workload(app: streamq.App) -> None:
    """What ``streamq run`` produces beside the processors (see ``processors.demo``)."""
    from processors.demo import demo_workload as workload

    await workload(app)


def http_operations() -> list[Any]:
    """The application's endpoints, for ``server.create_app(..., extra_operations=...)``."""
    from processors.api import operations

    return list(operations())


def queue_workers(app: streamq.App, **options: Any) -> list[streamq.Worker]:
    """One streamq Worker per queue with the plans' concurrency (``processors.config.QUEUES``:
    balances 50, analysis 10, enrichment 20, whale update 1, ...), as BullMQ runs one Worker
    per queue. ``options`` go to every Worker (grace, ...)."""
    rt = runtime_of(app)
    return [
        streamq.Worker(app, queues=[rt.queue(name)], concurrency=spec.concurrency, **options)
        for name, spec in QUEUES.items()
    ]


async def run_queue_workers(app: streamq.App) -> None:
    """Runs ``queue_workers(app)`` until SIGINT/SIGTERM (``python -m processors.app``)."""
    import asyncio
    import signal

    workers = queue_workers(app)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for w in workers:
            w.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await asyncio.gather(*(w.run() for w in workers))
    finally:
        await app.close()


if __name__ == "__main__":
    import asyncio

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_queue_workers(default_app()))
