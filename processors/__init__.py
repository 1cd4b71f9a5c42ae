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

Job handlers and HTTP routes are wired onto this separately.
"""

from __future__ import annotations
