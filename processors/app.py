"""The processors on streamq: every queue and job of the plans, registered on one App.

``streamq worker processors.app:app`` runs the handlers (one worker, one concurrency for all
queues; ``python -m processors.app`` runs one worker per queue with the plans' concurrency),
``streamq serve --app
processors.app:app`` serves the HTTP API (plus ``http_operations``, the application's
``/api/v1/...`` endpoints), ``streamq run`` does both and starts ``processors.demo``.

``build_app(settings)`` builds an independent deployment: its own queue names (prefix/suffix),
SQLite file and providers — which is how tests run side by side.
"""

from __future__ import annotations

import logging
from typing import Any

import streamq
from processors.config import JOBS, QUEUES
from processors.jobs_analysis import register_analysis_jobs
from processors.jobs_enrichment import register_enrichment_jobs
from processors.jobs_polymarket import register_polymarket_jobs
from processors.jobs_support import Runtime, ensure_setup, runtime_of, schedule
from processors.jobs_wallet import register_wallet_jobs
from processors.providers.base import Providers
from processors.settings import Settings
from processors.store import Store

__all__ = [
    "Settings",
    "app",
    "build_app",
    "demo_workload",
    "ensure_setup",
    "http_operations",
    "queue_workers",
    "recurring_jobs",
    "run_queue_workers",
]

log = logging.getLogger(__name__)


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
    register_wallet_jobs(app, rt)
    register_analysis_jobs(app, rt)
    register_enrichment_jobs(app, rt)
    register_polymarket_jobs(app, rt)
    for name, spec in recurring_jobs().items() if settings.schedules else ():
        schedule(app, name, cron=spec.cron, every=spec.every, overlap=False)
    return app


def recurring_jobs() -> dict[str, Any]:
    """The plans' recurring jobs: the hourly whale update and the 30 s anomaly batch."""
    return {n: s for n, s in JOBS.items() if s.cron is not None or s.every is not None}


async def demo_workload(app: streamq.App) -> None:
    """What ``streamq run`` produces beside the processors (see ``processors.demo``)."""
    from processors.demo import demo_workload as workload

    await workload(app)


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


def http_operations() -> list[Any]:
    """The application's endpoints, for ``server.create_app(..., extra_operations=...)``."""
    from processors.routes import operations

    return operations()


app = build_app(Settings.from_env())

if __name__ == "__main__":
    import asyncio

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_queue_workers(app))

# What `streamq run` offers as its curl line: a wallet sync any visitor can try (the simulator
# gives every valid Solana address its own deterministic history).
example_job = {
    "queue": app.task_def(None, "sync-wallet").queue,
    "name": "sync-wallet",
    "payload": {"wallet": "8vX37JFPDqJM5Gk8xson2kJ4Vph4jvuSqpcjqnGsFpPw"},
}
