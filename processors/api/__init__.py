"""The application's HTTP endpoints, declared as server ``Operation``s (so they get the
server's auth, rate limits, error envelope and OpenAPI entries), on ``server``'s public names:

- ``analyses``: ``/api/v1/analyses/...`` and ``/api/v1/wallets/{address}/...``;
- ``jobs``: 01's job API by id, a wallet's active jobs, ``/health/queues``;
- ``bulk``: 01's job-starting API (wallet sync, bulk analysis) and the bulk status;
- ``results``: enrichment results as they come (JSON and SSE), results by request id;
- ``admin``: 01's queue stats, pause and resume by the plans' queue names, maintenance runs;
- ``schemas``: request and response bodies; ``requests``: body decoding and input checks.
"""

from __future__ import annotations

from processors.api import admin, analyses, bulk, jobs, results
from server import Operation

__all__ = ["operations"]


def operations() -> list[Operation]:
    """Every endpoint of the application."""
    return [
        *analyses.operation.operations,
        *bulk.operation.operations,
        *jobs.operation.operations,
        *results.operation.operations,
        *admin.operation.operations,
    ]
