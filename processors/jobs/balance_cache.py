"""The balance cache (03's ``balance:{wallet}``): balances kept 30 s in Redis, and one
``fetch-balances`` job per wallet for everyone who misses it at once."""

from __future__ import annotations

import time

import msgspec

import streamq
from processors.config import CACHE
from processors.ids import balances_job_id
from processors.models import WalletBalances
from processors.runtime import Runtime

__all__ = ["cached_balances", "read_cached_balances", "write_cached_balances"]

_decode_balances = msgspec.json.Decoder(WalletBalances).decode
_encode = msgspec.json.Encoder().encode


async def read_cached_balances(rt: Runtime, wallet: str) -> WalletBalances | None:
    raw = await (await rt.redis()).get(rt.key("balance", wallet))
    return _decode_balances(raw) if raw else None


async def write_cached_balances(rt: Runtime, balances: WalletBalances, ttl: float) -> None:
    key = rt.key("balance", balances.wallet)
    await (await rt.redis()).set(key, _encode(balances), px=int(ttl * 1000))


async def cached_balances(rt: Runtime, wallet: str, *, timeout: float = 60.0) -> WalletBalances:
    """03's ``getBalances``: the 30 s cache, else one ``fetch-balances`` job per wallet (shared
    by everyone asking at once: its id is ``bal:{wallet}``), waited for.

    Two layers: the balances the fetch-balances handler itself caches (which also serves the
    similarity flow's per-request balance jobs), then ``streamq.cached``, which makes callers
    that miss at the same moment share one job. Raises streamq.JobFailed if the fetch failed
    for good, TimeoutError after ``timeout``.
    """
    hit = await read_cached_balances(rt, wallet)
    if hit is not None:
        return hit
    # One fetch per wallet per cache window, whoever asks: ``bal:{wallet}`` (03) plus the
    # window, so a failed fetch blocks nobody past its window.
    window = int(time.time() // CACHE.balances_ttl)
    request = streamq.EnqueueRequest(
        name="fetch-balances", payload={"wallet": wallet}, id=f"{balances_job_id(wallet)}:{window}"
    )
    ttl = CACHE.balances_ttl
    got = await streamq.cached(rt.app, f"balance:{wallet}", ttl, request, timeout=timeout)
    return msgspec.convert(got, WalletBalances)
