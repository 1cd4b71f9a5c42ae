"""Errors raised by the application layer.

::

    ProcessorsError
    ├── InvalidWalletAddress      (also a ValueError) bad Solana address(es); never retry
    ├── InsufficientData          an analysis lacks the data it needs; never retry
    └── ProviderError             an external service (or its simulator) failed
        └── RateLimited           the service answered 429; always retryable

``ProviderError.retryable`` tells the caller whether trying again can help (timeouts, 429 and
5xx answers) or not (4xx answers, malformed data). The job wiring maps retryable errors to a
broker retry and the rest to a dead letter.
"""

from __future__ import annotations

__all__ = [
    "InsufficientData",
    "InvalidWalletAddress",
    "ProcessorsError",
    "ProviderError",
    "RateLimited",
]


class ProcessorsError(Exception):
    """Root of every error this package raises on purpose."""


class InvalidWalletAddress(ProcessorsError, ValueError):
    """Raised when one or more wallet addresses are not valid Solana addresses.

    ``addresses`` lists the offending inputs in the order given; the message names them all and
    starts with ``INVALID_WALLET_ADDRESS`` (the plans' fatal error code).
    """

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = list(addresses)
        shown = ", ".join(repr(a) for a in self.addresses)
        super().__init__(f"INVALID_WALLET_ADDRESS: not a valid Solana address: {shown}")


class InsufficientData(ProcessorsError):
    """Raised when an analysis cannot run on the data given (e.g. similarity of < 2 wallets)."""


class ProviderError(ProcessorsError):
    """Raised when a provider call fails.

    ``retryable`` is True for transient failures (network, timeout, 429, 5xx, injected
    simulator faults); ``status`` is the HTTP status when there was one; ``provider`` names the
    service ("helius", "dexscreener", "polymarket", "webhook", or "simulator:<service>").
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retryable: bool,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retryable = retryable
        self.status = status


class RateLimited(ProviderError):
    """Raised when a service answers 429 after all retries; ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, provider: str, retry_after: float | None = None) -> None:
        super().__init__(message, provider=provider, retryable=True, status=429)
        self.retry_after = retry_after
