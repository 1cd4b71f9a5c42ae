"""Choose and build the provider set from settings (or the environment).

``PROCESSORS_PROVIDERS=simulator`` (the default) builds the deterministic simulator, tuned by
``SIM_SEED``, ``SIM_LATENCY`` (seconds), ``SIM_ERROR_RATE`` (0..1) and ``SIM_RATE_LIMIT``
(calls per second). ``PROCESSORS_PROVIDERS=http`` builds the real services' clients from
``HELIUS_API_KEY``, ``HELIUS_URL``, ``DEXSCREENER_URL``, ``POLYMARKET_GAMMA_URL``,
``POLYMARKET_DATA_URL`` and ``ALERT_WEBHOOK_URL``, rate-limited per ``processors.config``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

import msgspec

from processors.config import RATE_LIMITS
from processors.errors import ProcessorsError
from processors.providers.base import Providers
from processors.providers.http import (
    DexScreenerTokens,
    HeliusChain,
    PolymarketHttp,
    WebhookAlertSink,
)
from processors.providers.simulator import simulated_providers

__all__ = ["ProviderSettings", "build_providers", "close_providers"]


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["simulator", "http"] = "simulator"
    seed: int = 7
    latency: float = 0.0
    error_rate: float = 0.0
    rate_limit: float | None = None
    helius_api_key: str = ""
    helius_url: str = "https://api.helius.xyz"
    dexscreener_url: str = "https://api.dexscreener.com"
    polymarket_gamma_url: str = "https://gamma-api.polymarket.com"
    polymarket_data_url: str = "https://data-api.polymarket.com"
    webhook_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProviderSettings:
        """Settings from environment variables; raises ProcessorsError on a bad value."""
        e = os.environ if env is None else env
        kind = e.get("PROCESSORS_PROVIDERS", "simulator")
        if kind not in ("simulator", "http"):
            raise ProcessorsError(f"PROCESSORS_PROVIDERS must be simulator or http, not {kind!r}")
        urls = {
            "helius_url": "HELIUS_URL",
            "dexscreener_url": "DEXSCREENER_URL",
            "polymarket_gamma_url": "POLYMARKET_GAMMA_URL",
            "polymarket_data_url": "POLYMARKET_DATA_URL",
        }
        try:
            rate = e.get("SIM_RATE_LIMIT")
            return cls(
                kind=kind,  # type: ignore[arg-type]
                seed=int(e.get("SIM_SEED", "7")),
                latency=float(e.get("SIM_LATENCY", "0")),
                error_rate=float(e.get("SIM_ERROR_RATE", "0")),
                rate_limit=float(rate) if rate else None,
                helius_api_key=e.get("HELIUS_API_KEY", ""),
                webhook_url=e.get("ALERT_WEBHOOK_URL", ""),
                # unset variables keep the field defaults (the services' public URLs)
                **{field: e[var] for field, var in urls.items() if e.get(var)},
            )
        except ValueError as exc:
            raise ProcessorsError(f"bad provider setting: {exc}") from exc


def build_providers(settings: ProviderSettings | None = None) -> Providers:
    """The provider set ``settings`` describe; raises ProcessorsError if http lacks a key/URL."""
    s = settings or ProviderSettings()
    if s.kind == "simulator":
        return simulated_providers(
            seed=s.seed, latency=s.latency, error_rate=s.error_rate, rate_limit=s.rate_limit
        )
    missing = [
        name
        for name, v in (("HELIUS_API_KEY", s.helius_api_key), ("ALERT_WEBHOOK_URL", s.webhook_url))
        if not v
    ]
    if missing:
        raise ProcessorsError(f"http providers need {', '.join(missing)}")
    return Providers(
        chain=HeliusChain(
            s.helius_api_key, base_url=s.helius_url, rate_limit=RATE_LIMITS.helius_rps
        ),
        tokens=DexScreenerTokens(
            base_url=s.dexscreener_url, rate_limit=RATE_LIMITS.dexscreener_rps
        ),
        polymarket=PolymarketHttp(
            gamma_url=s.polymarket_gamma_url,
            data_url=s.polymarket_data_url,
            rate_limit=RATE_LIMITS.polymarket_rps,
        ),
        alerts=WebhookAlertSink(s.webhook_url, rate_limit=RATE_LIMITS.webhook_rps),
    )


async def close_providers(providers: Providers) -> None:
    """Close the HTTP clients among ``providers`` (simulators hold nothing to close)."""
    for p in (providers.chain, providers.tokens, providers.polymarket, providers.alerts):
        aclose = getattr(p, "aclose", None)
        if aclose is not None:
            await aclose()
