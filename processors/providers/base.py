"""What the application needs from the outside world, as protocols.

Every method is async and raises :class:`processors.errors.ProviderError` (``retryable`` set)
when the service fails. Implementations: ``processors.providers.simulator`` (the default) and
``processors.providers.http`` (the real services).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import msgspec

from processors import models


@runtime_checkable
class ChainProvider(Protocol):
    """Solana transaction history and balances (the plans' Helius)."""

    async def get_swaps(
        self, wallet: str, *, before: str | None = None, limit: int = 100
    ) -> models.SwapPage:
        """Swaps of ``wallet`` older than signature ``before`` (None: newest), newest first."""
        ...

    async def get_balances(self, wallet: str) -> models.WalletBalances:
        """Current SOL and SPL token balances of ``wallet``."""
        ...


@runtime_checkable
class TokenDataProvider(Protocol):
    """Token metadata and prices (the plans' DexScreener)."""

    async def get_tokens(self, mints: Sequence[str]) -> dict[str, models.TokenInfo]:
        """Info for the mints the service knows; unknown mints are left out of the answer."""
        ...


@runtime_checkable
class PolymarketProvider(Protocol):
    """Polymarket markets and trades."""

    async def get_markets(
        self, *, limit: int = 100, offset: int = 0
    ) -> list[models.PolymarketMarket]:
        """Active markets, by volume."""
        ...

    async def get_trades(
        self, *, since: int, until: int | None = None, limit: int = 500, offset: int = 0
    ) -> list[models.PolymarketTrade]:
        """Trades with ``since <= timestamp < until``, oldest first, paged by offset."""
        ...


@runtime_checkable
class AlertSink(Protocol):
    """Alert delivery (a Discord-style webhook)."""

    async def send(self, alert: models.Alert) -> None:
        """Deliver ``alert``; raises ProviderError if it could not be delivered."""
        ...


class Providers(msgspec.Struct, frozen=True, kw_only=True):
    """The set of providers a worker runs with."""

    chain: ChainProvider
    tokens: TokenDataProvider
    polymarket: PolymarketProvider
    alerts: AlertSink
