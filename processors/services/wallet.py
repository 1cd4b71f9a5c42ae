"""Wallet analytics as async services: what the job handlers (and quick endpoints) call.

Each function does one step of the plans over a :class:`~processors.store.Store` and providers:
sync a wallet's swaps, price its tokens, compute and save PnL and behaviour, run the dashboard
analysis, fetch balances, run similarity with partial-failure tolerance, enrich balances.
Store calls run in a worker thread (``anyio.to_thread``); provider errors propagate unchanged,
so :class:`~processors.errors.ProviderError` with ``retryable`` reaches the caller.

``progress`` callbacks take ``(percent, message)`` like streamq's ``ctx.progress``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Literal

import anyio
import anyio.to_thread
import msgspec

from processors.analysis.behavior import BehaviorConfig, BehaviorMetrics, analyze_behavior
from processors.analysis.enrichment import (
    BatchSource,
    EnrichedBatch,
    EnrichedWallet,
    enrich_balances,
    enriched_holdings,
    plan_enrichment,
)
from processors.analysis.pnl import PnlReport, compute_pnl
from processors.analysis.similarity import SimilarityResult, VectorType, analyze_similarity
from processors.config import CACHE, ENRICHMENT, SIMILARITY, SYNC
from processors.errors import InsufficientData, ProviderError
from processors.models import Swap, TokenInfo, WalletBalances
from processors.providers.base import ChainProvider, Providers, TokenDataProvider
from processors.solana import SOL_MINT, validate_address, validate_addresses
from processors.store import Store

__all__ = [
    "DashboardResult",
    "Progress",
    "SimilarityFlowResult",
    "SyncResult",
    "analyze_wallet_behavior",
    "analyze_wallet_pnl",
    "dashboard_analysis",
    "enrich_wallet_balances",
    "fetch_balances",
    "similarity_flow",
    "similarity_of",
    "sync_wallet",
    "token_infos",
    "wallets_needing_sync",
]

Progress = Callable[[float, str], Awaitable[None]]


async def _noop(pct: float, message: str) -> None:
    return None


class SyncResult(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    status: Literal["synced", "already-current"]
    new_swaps: int
    fetched: int
    pages: int
    last_synced_at: int | None


class DashboardResult(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    synced: bool
    sync: SyncResult | None
    pnl: PnlReport
    behavior: BehaviorMetrics
    processing_seconds: float


class SimilarityFlowResult(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    similarity: SimilarityResult
    balances: dict[str, WalletBalances]
    requested_wallets: int
    processed_wallets: int
    failed_wallets: dict[str, str]  # wallet -> error
    success_rate: float


async def wallets_needing_sync(
    store: Store,
    wallets: Sequence[str],
    *,
    fresh_for: float = SYNC.fresh_for,
    now: int | None = None,
) -> list[str]:
    """The STALE or MISSING wallets among ``wallets`` (03: the controller decides, once)."""
    statuses = await anyio.to_thread.run_sync(
        lambda: store.wallet_statuses(list(wallets), fresh_for=fresh_for, now=now)
    )
    return [s.address for s in statuses if s.status != "FRESH"]


async def sync_wallet(
    store: Store,
    chain: ChainProvider,
    wallet: str,
    *,
    force: bool = False,
    max_swaps: int | None = None,
    page_size: int = SYNC.page_size,
    now: int | None = None,
    progress: Progress = _noop,
) -> SyncResult:
    """Fetch the wallet's swaps newer than the last sync (all with ``force``) and store them.

    Skips the fetch if the wallet was synced within ``SYNC.skip_if_synced_within`` seconds and
    ``force`` is False. Raises InvalidWalletAddress, or ProviderError from the chain provider
    (nothing is marked synced then; swaps are only recorded once the fetch completed).
    """
    validate_address(wallet)
    at = int(time.time()) if now is None else now
    status = (
        await anyio.to_thread.run_sync(
            lambda: store.wallet_statuses([wallet], fresh_for=SYNC.skip_if_synced_within, now=at)
        )
    )[0]
    if status.status == "FRESH" and not force:
        await progress(100, "already current")
        return SyncResult(
            wallet=wallet,
            status="already-current",
            new_swaps=0,
            fetched=0,
            pages=0,
            last_synced_at=status.last_synced_at,
        )
    known = None if force else await anyio.to_thread.run_sync(store.newest_signature, wallet)
    fetched: list[Swap] = []
    before: str | None = None
    pages = 0
    while True:
        page = await chain.get_swaps(wallet, before=before, limit=page_size)
        pages += 1
        stop = False
        for s in page.swaps:
            if s.signature == known:
                stop = True  # everything older is stored already
                break
            fetched.append(s)
        await progress(min(90.0, 10.0 + pages * 5.0), f"fetched {len(fetched)} swaps")
        if max_swaps is not None and len(fetched) >= max_swaps:
            fetched = fetched[:max_swaps]
            break
        if stop or page.before is None or not page.swaps:
            break
        before = page.before
    newest = fetched[0].signature if fetched else known
    added = await anyio.to_thread.run_sync(
        lambda: store.record_sync(wallet, fetched, newest_signature=newest, now=at)
    )
    await progress(100, f"synced {added} new swaps")
    return SyncResult(
        wallet=wallet,
        status="synced",
        new_swaps=added,
        fetched=len(fetched),
        pages=pages,
        last_synced_at=at,
    )


async def token_infos(
    store: Store,
    tokens: TokenDataProvider,
    mints: Sequence[str],
    *,
    max_age: float = CACHE.token_info_max_age,
    now: int | None = None,
    on_batch: Callable[[dict[str, TokenInfo]], Awaitable[None]] | None = None,
    on_cached: Callable[[dict[str, TokenInfo]], Awaitable[None]] | None = None,
) -> dict[str, TokenInfo]:
    """Token info for ``mints``: stored when fresh enough, else fetched in batches and stored.
    ``on_cached`` hears the fresh stored ones first, ``on_batch`` each fetched batch."""
    at = int(time.time()) if now is None else now
    cached = await anyio.to_thread.run_sync(store.token_infos, list(dict.fromkeys(mints)))
    plan = plan_enrichment(mints, cached, now=at, max_age=max_age, batch_size=ENRICHMENT.batch_size)
    out = {m: cached[m] for m in plan.cached}
    if on_cached is not None:
        await on_cached(dict(out))
    for batch in plan.batches:
        fetched = await tokens.get_tokens(batch)
        # Stamp with our clock: freshness is about when we asked, not the service's own time.
        got = {m: msgspec.structs.replace(i, fetched_at=at) for m, i in fetched.items()}
        await anyio.to_thread.run_sync(store.save_token_infos, list(got.values()))
        out.update(got)
        if on_batch is not None:
            await on_batch(got)
    return out


async def analyze_wallet_pnl(
    store: Store, tokens: TokenDataProvider, wallet: str, *, now: int | None = None
) -> PnlReport:
    """Compute the wallet's PnL from its stored swaps at current prices, save it, return it."""
    swaps = await anyio.to_thread.run_sync(store.swaps, wallet)
    infos = await token_infos(store, tokens, sorted({s.mint for s in swaps}), now=now)
    report = compute_pnl(wallet, swaps, {m: i.price_sol for m, i in infos.items()})
    await anyio.to_thread.run_sync(lambda: store.save_pnl(report, now=now))
    return report


async def analyze_wallet_behavior(
    store: Store,
    tokens: TokenDataProvider,
    wallet: str,
    *,
    config: BehaviorConfig | None = None,
    now: int | None = None,
) -> BehaviorMetrics:
    """Compute the wallet's behaviour from its stored swaps, save it, return it."""
    swaps = await anyio.to_thread.run_sync(store.swaps, wallet)
    infos = await token_infos(store, tokens, sorted({s.mint for s in swaps}), now=now)
    launches = {m: i.pair_created_at for m, i in infos.items()}
    metrics = analyze_behavior(wallet, swaps, launch_times=launches, config=config)
    await anyio.to_thread.run_sync(lambda: store.save_behavior(metrics, now=now))
    return metrics


async def dashboard_analysis(
    store: Store,
    providers: Providers,
    wallet: str,
    *,
    force_refresh: bool = False,
    max_swaps: int | None = SYNC.dashboard_max_swaps,
    now: int | None = None,
    progress: Progress = _noop,
) -> DashboardResult:
    """02's dashboard job body: smart sync (STALE/MISSING only), then PnL, then behaviour."""
    started = time.monotonic()
    validate_address(wallet)
    at = int(time.time()) if now is None else now
    await progress(10, "checking wallet status")
    status = (
        await anyio.to_thread.run_sync(
            lambda: store.wallet_statuses([wallet], fresh_for=SYNC.fresh_for, now=at)
        )
    )[0]
    sync = None
    if status.status != "FRESH" or force_refresh:
        await progress(15, f"wallet {status.status.lower()}, syncing")
        sync = await sync_wallet(
            store, providers.chain, wallet, force=force_refresh, max_swaps=max_swaps, now=at
        )
    await progress(40, "sync done" if sync else "wallet current, sync skipped")
    # Sequential on purpose (02): both read the same swaps and write the same wallet row.
    pnl = await analyze_wallet_pnl(store, providers.tokens, wallet, now=at)
    await progress(65, "PnL done")
    behavior = await analyze_wallet_behavior(store, providers.tokens, wallet, now=at)
    await progress(80, "behaviour done")
    return DashboardResult(
        wallet=wallet,
        synced=sync is not None,
        sync=sync,
        pnl=pnl,
        behavior=behavior,
        processing_seconds=time.monotonic() - started,
    )


async def fetch_balances(
    chain: ChainProvider, wallets: Sequence[str], *, concurrency: int = 8
) -> tuple[dict[str, WalletBalances], dict[str, ProviderError]]:
    """Balances of each wallet, fetched concurrently; failures are returned, not raised."""
    got: dict[str, WalletBalances] = {}
    failed: dict[str, ProviderError] = {}
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(w: str) -> None:
        async with limiter:
            try:
                got[w] = await chain.get_balances(w)
            except ProviderError as exc:
                failed[w] = exc

    async with anyio.create_task_group() as tg:
        for w in dict.fromkeys(wallets):
            tg.start_soon(one, w)
    return got, failed


async def similarity_flow(
    store: Store,
    providers: Providers,
    wallets: Sequence[str],
    *,
    request_id: str,
    wallets_needing_sync: Sequence[str] = (),
    vector_type: VectorType = "capital",
    failure_threshold: float = SIMILARITY.failure_threshold,
    now: int | None = None,
    progress: Progress = _noop,
) -> SimilarityFlowResult:
    """03/04's advanced similarity: deep sync ∥ balances, then similarity; saved by request id.

    Wallets whose sync or balance fetch fails are left out. If fewer than ``failure_threshold``
    of the wallets remain, or fewer than two, the flow fails: with the first retryable
    ProviderError when one occurred (a retry may help), else InsufficientData.
    """
    wallets = validate_addresses(dict.fromkeys(wallets))
    failures: dict[str, ProviderError] = {}
    balances: dict[str, WalletBalances] = {}
    await progress(5, f"syncing {len(wallets_needing_sync)} wallets and fetching balances")

    async def deep_sync(w: str) -> None:
        try:
            await sync_wallet(store, providers.chain, w, now=now)
            await analyze_wallet_pnl(store, providers.tokens, w, now=now)
            await analyze_wallet_behavior(store, providers.tokens, w, now=now)
        except ProviderError as exc:
            failures.setdefault(w, exc)

    async def balances_of_all() -> None:
        got, failed = await fetch_balances(providers.chain, wallets)
        balances.update(got)
        for w, exc in failed.items():
            failures.setdefault(w, exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(balances_of_all)
        for w in dict.fromkeys(wallets_needing_sync):
            tg.start_soon(deep_sync, w)
    await progress(60, "sync and balances done")

    ok, rate = _usable(wallets, failures)
    if not _enough(ok, rate, failure_threshold):
        retryable = next((e for e in failures.values() if e.retryable), None)
        if retryable is not None:
            raise retryable
    result = await similarity_of(
        store,
        providers,
        wallets,
        balances=balances,
        failed={w: str(e) for w, e in failures.items()},
        request_id=request_id,
        vector_type=vector_type,
        failure_threshold=failure_threshold,
        now=now,
    )
    await progress(90, "similarity done")
    return result


def _usable(wallets: Sequence[str], failed: Collection[str]) -> tuple[list[str], float]:
    """The wallets not in ``failed``, and their share of ``wallets``."""
    ok = [w for w in wallets if w not in failed]
    return ok, len(ok) / len(wallets) if wallets else 0.0


def _enough(ok: Sequence[str], rate: float, failure_threshold: float) -> bool:
    """Whether the similarity can run: at least the threshold's share, and two wallets."""
    return rate >= failure_threshold and len(ok) >= SIMILARITY.min_wallets


async def similarity_of(
    store: Store,
    providers: Providers,
    wallets: Sequence[str],
    *,
    balances: dict[str, WalletBalances],
    failed: dict[str, str],
    request_id: str,
    vector_type: VectorType = "capital",
    failure_threshold: float = SIMILARITY.failure_threshold,
    now: int | None = None,
) -> SimilarityFlowResult:
    """The similarity step once syncs and balances are in: over the wallets not in ``failed``.

    Raises InsufficientData if fewer than ``failure_threshold`` of ``wallets`` remain, or fewer
    than two. The result is saved under ``request_id``.
    """
    wallets = list(dict.fromkeys(wallets))
    failed = {w: e for w, e in failed.items() if w in wallets}
    ok, rate = _usable(wallets, failed)
    if not _enough(ok, rate, failure_threshold):
        raise InsufficientData(
            f"only {len(ok)} of {len(wallets)} wallets usable (threshold {failure_threshold:.0%})"
        )
    swaps = {w: await anyio.to_thread.run_sync(store.swaps, w) for w in ok}
    usable = {w: b for w, b in balances.items() if w in ok}
    mints = sorted({t.mint for b in usable.values() for t in b.tokens})
    infos = await token_infos(store, providers.tokens, mints, now=now)
    result = analyze_similarity(
        swaps,
        vector_type=vector_type,
        balances=usable,
        prices={m: i.price_sol for m, i in infos.items()},
    )
    await anyio.to_thread.run_sync(lambda: store.save_similarity(request_id, result, now=now))
    return SimilarityFlowResult(
        request_id=request_id,
        similarity=result,
        balances={w: usable[w] for w in ok if w in usable},
        requested_wallets=len(wallets),
        processed_wallets=len(ok),
        failed_wallets=failed,
        success_rate=rate,
    )


async def enrich_wallet_balances(
    store: Store,
    tokens: TokenDataProvider,
    balances: dict[str, WalletBalances],
    *,
    now: int | None = None,
    on_batch: Callable[[dict[str, TokenInfo]], Awaitable[None]] | None = None,
    on_enriched: Callable[[EnrichedBatch], Awaitable[None]] | None = None,
) -> dict[str, EnrichedWallet]:
    """The enrich-token-balances body: database-first token info, then USD values.

    ``on_enriched`` receives the holdings as they become ready (03's progressive results): the
    ones whose info was fresh in the store, then those of each fetched batch, then those the
    service did not know; together, exactly the holdings of the result.
    """
    held = {t.mint for b in balances.values() for t in b.tokens}
    mints = sorted(held | {SOL_MINT})
    known: dict[str, TokenInfo] = {}
    published: set[str] = set()
    index = 0

    async def publish(source: BatchSource, ready: set[str]) -> None:
        nonlocal index
        fresh = (ready & held) - published
        published.update(fresh)
        if on_enriched is None or not fresh:
            return
        batch = EnrichedBatch(
            index=index, source=source, tokens=enriched_holdings(balances, known, fresh)
        )
        index += 1
        await on_enriched(batch)

    async def cached(got: dict[str, TokenInfo]) -> None:
        known.update(got)
        await publish("store", set(got))

    async def fetched(got: dict[str, TokenInfo]) -> None:
        known.update(got)
        await publish("service", set(got))
        if on_batch is not None:
            await on_batch(got)

    infos = await token_infos(store, tokens, mints, now=now, on_batch=fetched, on_cached=cached)
    await publish("unknown", held)
    sol = infos.get(SOL_MINT)
    return enrich_balances(balances, infos, sol_usd=sol.price_usd if sol else None)
