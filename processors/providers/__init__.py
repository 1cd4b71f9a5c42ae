"""Provider interfaces, the deterministic simulator and the HTTP clients of the real services.

The interfaces (``processors.providers.base``) are the package's public names.
"""

from __future__ import annotations

from processors.providers.base import (
    AlertSink,
    ChainProvider,
    PolymarketProvider,
    Providers,
    TokenDataProvider,
)

__all__ = [
    "AlertSink",
    "ChainProvider",
    "PolymarketProvider",
    "Providers",
    "TokenDataProvider",
]
