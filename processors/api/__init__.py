"""The application's HTTP endpoints, declared as server ``Operation``s (so they get the
server's auth, rate limits, error envelope and OpenAPI entries), on ``server``'s public names:

- ``analyses``: ``/api/v1/analyses/...`` and ``/api/v1/wallets/{address}/...``;
- ``jobs``: 01's job API by id, a wallet's active jobs, ``/health/queues``;
- ``schemas``: request and response bodies; ``requests``: body decoding and input checks.
"""

from __future__ import annotations

from processors.api import analyses, jobs
from server import Operation

__all__ = ["operations"]


def operations() -> list[Operation]:
    """Every endpoint of the application."""
    return [*analyses.operation.operations, *jobs.operation.operations]
