"""The application on top of streamq: wallet analytics and Polymarket monitoring.

Imports go one way, top to bottom; nothing below imports what is above it.

- ``processors.app``: ``build_app(settings)`` registers every job on a streamq App; importing
  it builds nothing — ``processors.app:app`` (what ``streamq worker`` / ``streamq run`` /
  ``streamq serve`` load) is made on first access, with ``example_job``; ``demo_workload``
  and ``http_operations`` are what ``streamq run`` and the server take from it;
- ``processors.demo``: the demo workload ``streamq run`` starts;
- ``processors.api``: the ``/api/v1/...`` endpoints and ``/health/queues`` as server
  Operations (``analyses``, ``bulk``, ``jobs``, ``results``, ``admin``; bodies in
  ``schemas``; input checks in ``requests``);
- ``processors.jobs``: one module per queue family (``wallet``, ``analysis``, ``bulk``,
  ``enrichment``, ``maintenance``, ``polymarket``) of module-level handlers over the payloads
  and results in ``jobs.types``, registered by ``jobs.register_jobs``; ``options`` (task
  options from the plans' table), ``signals`` (domain errors as broker signals),
  ``coordination`` (locks, flows, schedules, the alert rate limit), and the application's own
  keys: ``balance_cache``, ``wallet_index``, ``wallet_claims`` (the analysis a wallet has in
  progress), ``results`` (results by request id, enrichment batches as they come);
- ``processors.runtime``: the Runtime of one deployment (settings, store and providers built
  on first use, queue names, Redis keys), ``runtime_of(app)``;
- ``processors.services``: the async operations without a broker (``wallet``: sync, PnL,
  behaviour, similarity, enrichment; ``polymarket``: ingestion, detection, alerts);
- ``processors.store``: SQLite (WAL) behind ``Store``, with its ``migrations``;
- ``processors.analysis``: PnL, behaviour, similarity, enrichment, Polymarket scoring (pure);
- ``processors.providers``: protocols (``base``), the deterministic simulator
  (``simulator``, over ``sim_world`` and ``sim_polymarket``), HTTP clients of the real
  services (``http``, with the services' JSON in ``wire``), ``factory.build_providers``;
- the vocabulary every layer shares: ``settings`` (one deployment's settings), ``config`` and
  ``ids`` (the plans' queues, jobs, limits and job ids), ``models`` (swaps, balances, tokens,
  Polymarket markets, trades and alerts), ``errors`` (the exception tree;
  ``ProviderError.retryable`` drives retries), ``solana`` (address validation).

Test support (a whole deployment in one event loop, stand-ins of the real services) lives in
the repository's ``tests/support/``, not in the package.
"""

from __future__ import annotations
