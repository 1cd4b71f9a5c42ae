"""Call-level retries for providers that have none of their own (the simulator).

The HTTP clients retry each request themselves; the simulator answers at once, so a job over
it would otherwise have to redo its whole body for one transient failure. ``with_retries``
wraps the chain and token providers (the ones a single job calls many times) so a retryable
ProviderError is tried again with exponential backoff before it reaches the job. Alerts and
Polymarket are left as they are: one call per job, retried by the broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio

from processors.errors import ProviderError, RateLimited
from processors.models import SwapPage, TokenInfo, WalletBalances
from processors.providers.base import ChainProvider, Providers, TokenDataProvider

__all__ = ["RetryPolicy", "with_retries"]

T = TypeVar("T")


class RetryPolicy:
    def __init__(self, attempts: int = 5, base: float = 0.05, maximum: float = 2.0) -> None:
        self.attempts = attempts
        self.base = base
        self.maximum = maximum

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return await call()
            except ProviderError as exc:
                if not exc.retryable or attempt == self.attempts:
                    raise
                delay = min(self.maximum, self.base * 2 ** (attempt - 1))
                if isinstance(exc, RateLimited) and exc.retry_after:
                    delay = max(delay, exc.retry_after)
                await anyio.sleep(delay)
        raise AssertionError("unreachable")


class _RetryingChain:
    def __init__(self, inner: ChainProvider, policy: RetryPolicy) -> None:
        self.inner = inner
        self.policy = policy

    def __getattr__(self, name: str) -> Any:  # counters, the simulated world, ...
        return getattr(self.inner, name)

    async def get_swaps(
        self, wallet: str, *, before: str | None = None, limit: int = 100
    ) -> SwapPage:
        return await self.policy.run(
            lambda: self.inner.get_swaps(wallet, before=before, limit=limit)
        )

    async def get_balances(self, wallet: str) -> WalletBalances:
        return await self.policy.run(lambda: self.inner.get_balances(wallet))


class _RetryingTokens:
    def __init__(self, inner: TokenDataProvider, policy: RetryPolicy) -> None:
        self.inner = inner
        self.policy = policy

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get_tokens(self, mints: Sequence[str]) -> dict[str, TokenInfo]:
        return await self.policy.run(lambda: self.inner.get_tokens(mints))


def with_retries(providers: Providers, policy: RetryPolicy | None = None) -> Providers:
    """``providers`` with call-level retries on the chain and token data providers."""
    p = policy or RetryPolicy()
    return Providers(
        chain=_RetryingChain(providers.chain, p),
        tokens=_RetryingTokens(providers.tokens, p),
        polymarket=providers.polymarket,
        alerts=providers.alerts,
    )
