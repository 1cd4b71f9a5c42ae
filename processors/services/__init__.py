"""The application's async operations over a store and providers, without a broker: wallet
sync, analyses, similarity and enrichment (``wallet``), Polymarket ingestion, detection and
alerts (``polymarket``). Job handlers and routes call these."""

from __future__ import annotations
