"""The default providers: the simulated worlds behind the provider protocols.

Each provider can be slowed down (``latency`` seconds per call, ±50 % jitter), made to fail
(``error_rate``: that fraction of calls raises a retryable :class:`ProviderError`) and
rate-limited like a real service (``rate_limit`` calls per second; a call over the limit raises
:class:`RateLimited` with ``retry_after``). Faults draw from their own seeded generator, so a run
with the same seed and the same call order fails the same calls.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Sequence
from typing import ClassVar, Generic, TypeVar

import anyio
import msgspec

from processors import models
from processors.errors import ProviderError, RateLimited
from processors.providers.base import Providers
from processors.providers.sim_polymarket import PolymarketConfig, PolymarketWorld
from processors.providers.sim_world import SimWorld, WorldConfig
from processors.solana import SOL_MINT, is_valid_address

__all__ = [
    "MAX_TOKENS_PER_CALL",
    "Faults",
    "SimulatedAlertSink",
    "SimulatedChain",
    "SimulatedPolymarket",
    "SimulatedTokenData",
    "simulated_providers",
]

MAX_TOKENS_PER_CALL = 30  # DexScreener's limit per request, kept so batching code is exercised


class Faults(msgspec.Struct, frozen=True, kw_only=True):
    latency: float = 0.0
    error_rate: float = 0.0
    rate_limit: float | None = None  # calls per second the "service" accepts
    seed: int = 7


World = TypeVar("World")


class _FaultInjector:
    def __init__(self, faults: Faults, service: str) -> None:
        self.faults = faults
        self.provider = f"simulator:{service}"
        self._rng = random.Random(f"{faults.seed}:faults:{service}")
        self._calls: deque[float] = deque()
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        f = self.faults
        if f.rate_limit is not None:
            now = time.monotonic()
            while self._calls and now - self._calls[0] >= 1.0:
                self._calls.popleft()
            if len(self._calls) >= f.rate_limit:
                raise RateLimited(
                    "rate limit exceeded",
                    provider=self.provider,
                    retry_after=1.0 - (now - self._calls[0]),
                )
            self._calls.append(now)
        if f.latency > 0:
            await anyio.sleep(f.latency * self._rng.uniform(0.5, 1.5))
        if f.error_rate > 0 and self._rng.random() < f.error_rate:
            raise ProviderError(
                "injected failure (service unavailable)",
                provider=self.provider,
                retryable=True,
                status=503,
            )


class _Simulated(Generic[World]):
    """A simulated service over ``world``, failing and throttling as ``faults`` say."""

    service: ClassVar[str]

    def __init__(self, world: World, faults: Faults | None = None) -> None:
        self.world: World = world
        self._fault = _FaultInjector(faults or Faults(), self.service)

    @property
    def calls(self) -> int:
        """How many calls were made (failed ones included)."""
        return self._fault.calls


class SimulatedChain(_Simulated[SimWorld]):
    """ChainProvider over a :class:`SimWorld`."""

    service = "chain"

    async def get_swaps(
        self, wallet: str, *, before: str | None = None, limit: int = 100
    ) -> models.SwapPage:
        await self._fault()
        self._check(wallet)
        newest_first = self.world.swaps(wallet)[::-1]
        start = 0
        if before is not None:
            idx = next((i for i, s in enumerate(newest_first) if s.signature == before), None)
            if idx is None:
                raise ProviderError(
                    f"unknown signature {before!r} for {wallet}",
                    provider=self._fault.provider,
                    retryable=False,
                    status=400,
                )
            start = idx + 1
        page = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        return models.SwapPage(swaps=page, before=page[-1].signature if page and more else None)

    async def get_balances(self, wallet: str) -> models.WalletBalances:
        await self._fault()
        self._check(wallet)
        return self.world.balances(wallet)

    def _check(self, wallet: str) -> None:
        if not is_valid_address(wallet):
            raise ProviderError(
                f"invalid address {wallet!r}",
                provider=self._fault.provider,
                retryable=False,
                status=400,
            )


class SimulatedTokenData(_Simulated[SimWorld]):
    """TokenDataProvider over a :class:`SimWorld` (prices at the world's ``now``)."""

    service = "tokens"

    async def get_tokens(self, mints: Sequence[str]) -> dict[str, models.TokenInfo]:
        await self._fault()
        if len(mints) > MAX_TOKENS_PER_CALL:
            raise ProviderError(
                f"at most {MAX_TOKENS_PER_CALL} tokens per call, got {len(mints)}",
                provider=self._fault.provider,
                retryable=False,
                status=400,
            )
        now, sol_usd = self.world.config.now, self.world.config.sol_usd
        out: dict[str, models.TokenInfo] = {}
        for mint in mints:
            if mint == SOL_MINT:
                out[mint] = models.TokenInfo(
                    mint=mint,
                    symbol="SOL",
                    name="Wrapped SOL",
                    price_usd=sol_usd,
                    price_sol=1.0,
                    fetched_at=now,
                )
                continue
            token = self.world.tokens.get(mint)
            if token is None:
                continue
            price = self.world.current_price(mint)
            out[mint] = models.TokenInfo(
                mint=mint,
                symbol=token.symbol,
                name=token.name,
                price_usd=price * sol_usd,
                price_sol=price,
                liquidity_usd=round(price * sol_usd * 2e8, 2),
                market_cap_usd=round(price * sol_usd * 1e9, 2),
                pair_created_at=token.launch,
                fetched_at=now,
            )
        return out


class SimulatedPolymarket(_Simulated[PolymarketWorld]):
    """PolymarketProvider over a :class:`PolymarketWorld`."""

    service = "polymarket"

    async def get_markets(
        self, *, limit: int = 100, offset: int = 0
    ) -> list[models.PolymarketMarket]:
        await self._fault()
        return self.world.markets[offset : offset + limit]

    async def get_trades(
        self, *, since: int, until: int | None = None, limit: int = 500, offset: int = 0
    ) -> list[models.PolymarketTrade]:
        await self._fault()
        return self.world.trades_between(since, until)[offset : offset + limit]


class SimulatedAlertSink:
    """AlertSink that keeps what it was sent in :attr:`delivered` (in delivery order)."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.delivered: list[models.Alert] = []
        self._fault = _FaultInjector(faults or Faults(), "alerts")

    async def send(self, alert: models.Alert) -> None:
        await self._fault()
        self.delivered.append(alert)


def simulated_providers(
    *,
    seed: int = 7,
    latency: float = 0.0,
    error_rate: float = 0.0,
    rate_limit: float | None = None,
    world: WorldConfig | None = None,
    polymarket: PolymarketConfig | None = None,
) -> Providers:
    """The default provider set: one simulated world per service, faults as configured."""
    faults = Faults(latency=latency, error_rate=error_rate, rate_limit=rate_limit, seed=seed)
    sim = SimWorld(world or WorldConfig(seed=seed))
    pm = PolymarketWorld(polymarket or PolymarketConfig(seed=seed))
    return Providers(
        chain=SimulatedChain(sim, faults),
        tokens=SimulatedTokenData(sim, faults),
        polymarket=SimulatedPolymarket(pm, faults),
        alerts=SimulatedAlertSink(faults),
    )
