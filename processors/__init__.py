"""The application on top of streamq: wallet analytics and Polymarket monitoring.

The domain layer needs no broker. Where things are:

- ``processors.solana``: address validation (``validate_addresses`` raises
  ``InvalidWalletAddress`` naming every bad address);
- ``processors.errors``: the exception tree (``ProviderError.retryable`` drives retries);
- ``processors.models``: swaps, balances, token info, Polymarket markets/trades, alerts;
- ``processors.providers``: protocols (``base``), the deterministic simulator (``simulator``,
  over ``sim_world`` and ``sim_polymarket``), HTTP clients of the real services (``http``,
  with the services' JSON in ``wire``), local stand-in services (``standin``) and
  ``factory.build_providers``;
- ``processors.store``: SQLite (WAL) with migrations in ``processors.migrations``;
- ``processors.analysis``: PnL, behaviour, similarity, enrichment, Polymarket scoring (pure);
- ``processors.wallet_service`` / ``processors.polymarket_service``: the async job bodies;
- ``processors.config`` and ``processors.ids``: the plans' queues, jobs, limits and job ids.

On streamq and the HTTP server:

- ``processors.app``: ``build_app(settings)`` registers every job on a streamq App;
  ``processors.app:app`` is what ``streamq worker`` / ``streamq run`` serve;
- ``processors.settings``: one deployment's settings (queue prefix/suffix, SQLite file,
  providers);
- ``processors.jobs_wallet`` / ``jobs_analysis`` / ``jobs_enrichment`` / ``jobs_polymarket``:
  the handlers, with payloads and results in ``jobs_types``; ``jobs_support`` holds the
  Runtime (store, providers, queue names), error mapping, locks, the balance cache and flows;
- ``processors.routes`` / ``routes_jobs`` (bodies in ``routes_schemas``): the ``/api/v1/...``
  endpoints and ``/health/queues``, as server Operations;
- ``processors.demo``: the demo workload; ``processors.testing``: a whole deployment in one
  event loop, for tests and benchmarks.
"""

from __future__ import annotations
