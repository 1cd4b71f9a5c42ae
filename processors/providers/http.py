"""HTTP providers for the real services (httpx), with rate limits, timeouts and retries.

Every client sends at most ``rate_limit`` requests per second (a token bucket shared by all its
calls, retries included), gives each request ``timeout`` seconds, and retries transport errors,
timeouts, 429 and 5xx answers up to ``retries`` times with exponential backoff (honouring
``Retry-After`` on 429). Other 4xx answers and malformed bodies fail at once. Whatever fails
surfaces as :class:`ProviderError` (``retryable`` set) or :class:`RateLimited`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import anyio
import httpx
import msgspec

from processors import models
from processors.errors import ProviderError, RateLimited
from processors.providers import wire
from processors.providers.ratelimit import RateLimiter

__all__ = [
    "DexScreenerTokens",
    "HeliusChain",
    "HttpService",
    "PolymarketHttp",
    "WebhookAlertSink",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class HttpService:
    """One remote service: base URL, rate limit, timeout and retry policy."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        rate_limit: float | None = None,
        burst: int = 1,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.limiter = RateLimiter(rate_limit, burst=burst) if rate_limit else None
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers=dict(headers or {}),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Send with rate limiting and retries; returns a 2xx/3xx response or raises."""
        last: ProviderError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                if isinstance(last, RateLimited) and last.retry_after is not None:
                    if last.retry_after > self.max_backoff:
                        raise last  # longer than we will wait here: let the job be rescheduled
                    delay = max(delay, last.retry_after)
                await anyio.sleep(delay)
            if self.limiter is not None:
                await self.limiter.acquire()
            try:
                resp = await self.client.request(method, url, params=params, json=json)
            except httpx.TimeoutException as exc:
                last = ProviderError(f"timeout: {exc!r}", provider=self.name, retryable=True)
            except httpx.TransportError as exc:
                last = ProviderError(f"transport: {exc!r}", provider=self.name, retryable=True)
            else:
                if resp.status_code < 400:
                    return resp
                last = self._error(resp)
                if not last.retryable:
                    raise last
            log.info("%s %s %s failed (attempt %d): %s", self.name, method, url, attempt + 1, last)
        assert last is not None
        raise last

    def _error(self, resp: httpx.Response) -> ProviderError:
        text = resp.text[:200]
        if resp.status_code == 429:
            return RateLimited(f"429 {text}", provider=self.name, retry_after=_retry_after(resp))
        return ProviderError(
            f"{resp.status_code} {text}",
            provider=self.name,
            retryable=resp.status_code >= 500 or resp.status_code == 408,
            status=resp.status_code,
        )

    def decode(self, resp: httpx.Response, kind: type[T]) -> T:
        """Decode a JSON body; a body of the wrong shape is a non-retryable ProviderError."""
        try:
            return msgspec.json.decode(resp.content, type=kind)
        except msgspec.DecodeError as exc:
            raise ProviderError(
                f"unexpected answer from {resp.request.url}: {exc}",
                provider=self.name,
                retryable=False,
                status=resp.status_code,
            ) from exc


def _retry_after(resp: httpx.Response) -> float | None:
    header = resp.headers.get("retry-after")
    if header is not None:
        try:
            return float(header)
        except ValueError:
            return None
    try:
        # Discord puts it in the body, in seconds.
        body = msgspec.json.decode(resp.content)
        value = body.get("retry_after") if isinstance(body, dict) else None
        return float(value) if isinstance(value, int | float) else None
    except msgspec.DecodeError:
        return None


class HeliusChain:
    """ChainProvider on Helius' enhanced transactions and balances API."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.helius.xyz",
        rate_limit: float = 10.0,
        **options: Any,
    ) -> None:
        self.api_key = api_key
        self.http = HttpService("helius", base_url, rate_limit=rate_limit, **options)

    async def get_swaps(
        self, wallet: str, *, before: str | None = None, limit: int = 100
    ) -> models.SwapPage:
        params: dict[str, Any] = {"api-key": self.api_key, "limit": limit}
        if before is not None:
            params["before"] = before
        resp = await self.http.request("GET", f"/v0/addresses/{wallet}/transactions", params=params)
        txs = self.http.decode(resp, list[wire.HeliusTransaction])
        swaps = wire.swaps_from_helius(txs, wallet)
        # Page by the last *transaction*, swap or not, so non-swaps never stall the paging.
        nxt = txs[-1].signature if len(txs) >= limit else None
        return models.SwapPage(swaps=swaps, before=nxt)

    async def get_balances(self, wallet: str) -> models.WalletBalances:
        resp = await self.http.request(
            "GET", f"/v0/addresses/{wallet}/balances", params={"api-key": self.api_key}
        )
        doc = self.http.decode(resp, wire.HeliusBalances)
        return wire.balances_from_helius(doc, wallet, now=int(time.time()))

    async def aclose(self) -> None:
        await self.http.aclose()


class DexScreenerTokens:
    """TokenDataProvider on DexScreener's token endpoint (30 addresses per call)."""

    max_per_call = 30

    def __init__(
        self,
        *,
        base_url: str = "https://api.dexscreener.com",
        rate_limit: float = 5.0,
        **options: Any,
    ) -> None:
        self.http = HttpService("dexscreener", base_url, rate_limit=rate_limit, **options)

    async def get_tokens(self, mints: Sequence[str]) -> dict[str, models.TokenInfo]:
        out: dict[str, models.TokenInfo] = {}
        for i in range(0, len(mints), self.max_per_call):
            chunk = ",".join(mints[i : i + self.max_per_call])
            resp = await self.http.request("GET", f"/latest/dex/tokens/{chunk}")
            doc = self.http.decode(resp, wire.DexResponse)
            out.update(wire.tokens_from_dexscreener(doc, now=int(time.time())))
        return out

    async def aclose(self) -> None:
        await self.http.aclose()


class PolymarketHttp:
    """PolymarketProvider on the Gamma (markets) and Data (trades) APIs."""

    def __init__(
        self,
        *,
        gamma_url: str = "https://gamma-api.polymarket.com",
        data_url: str = "https://data-api.polymarket.com",
        rate_limit: float = 10.0,
        **options: Any,
    ) -> None:
        self.gamma = HttpService("polymarket-gamma", gamma_url, rate_limit=rate_limit, **options)
        self.data = HttpService("polymarket-data", data_url, rate_limit=rate_limit, **options)

    async def get_markets(
        self, *, limit: int = 100, offset: int = 0
    ) -> list[models.PolymarketMarket]:
        params = {
            "limit": limit,
            "offset": offset,
            "active": "true",
            "closed": "false",
            "order": "volumeNum",
            "ascending": "false",
        }
        resp = await self.gamma.request("GET", "/markets", params=params)
        return [wire.market_from_gamma(m) for m in self.gamma.decode(resp, list[wire.GammaMarket])]

    async def get_trades(
        self, *, since: int, until: int | None = None, limit: int = 500, offset: int = 0
    ) -> list[models.PolymarketTrade]:
        params: dict[str, Any] = {"limit": limit, "offset": offset, "start": since}
        if until is not None:
            params["end"] = until
        resp = await self.data.request("GET", "/trades", params=params)
        trades = [
            wire.trade_from_data_api(d) for d in self.data.decode(resp, list[wire.DataApiTrade])
        ]
        return sorted(trades, key=lambda t: (t.timestamp, t.trade_id))

    async def aclose(self) -> None:
        await self.gamma.aclose()
        await self.data.aclose()


class WebhookAlertSink:
    """AlertSink posting Discord-style webhook messages."""

    def __init__(
        self, url: str, *, rate_limit: float = 0.5, burst: int = 5, **options: Any
    ) -> None:
        self.url = url
        self.http = HttpService("webhook", "", rate_limit=rate_limit, burst=burst, **options)

    async def send(self, alert: models.Alert) -> None:
        await self.http.request(
            "POST", self.url, params={"wait": "true"}, json=wire.alert_to_discord(alert)
        )

    async def aclose(self) -> None:
        await self.http.aclose()
