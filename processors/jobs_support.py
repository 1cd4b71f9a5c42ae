"""What every job handler and route shares: the Runtime of one deployment (settings, store,
providers, queue names), error mapping onto streamq's signals, and the coordination the plans
ask for — per-wallet locks, the balance cache, flows, schedules and rate limits.

Each coordination primitive of streamq is called from exactly one function here:
``streamq.Lock`` (``named_lock``), ``streamq.cached`` (``cached_balances``),
``App.enqueue_flow`` (``enqueue_flow``), ``App.schedule`` (``schedule``) and ``App.rate_limit``
(``ensure_setup``).
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec

import streamq
from processors.config import CACHE, JOBS, POLYMARKET_ALERTS, QUEUES
from processors.errors import InsufficientData, InvalidWalletAddress, ProcessorsError, ProviderError
from processors.ids import balances_job_id
from processors.models import WalletBalances
from processors.providers.base import Providers
from processors.providers.factory import build_providers
from processors.providers.ratelimit import RateLimiter, SharedRateLimiter
from processors.providers.retrying import with_retries
from processors.settings import Settings
from processors.store import Store

__all__ = [
    "Runtime",
    "backoff_of",
    "cached_balances",
    "ensure_setup",
    "mapped_errors",
    "named_lock",
    "runtime_of",
    "wallet_lock",
]

log = logging.getLogger(__name__)

_RUNTIMES: weakref.WeakKeyDictionary[streamq.App, Runtime] = weakref.WeakKeyDictionary()


class Runtime:
    """One deployment's state, shared by its handlers and routes (``runtime_of(app)``).

    The store and providers are built on first use, so importing ``processors.app`` touches
    neither the disk nor the network.
    """

    def __init__(
        self,
        app: streamq.App,
        settings: Settings,
        *,
        store: Store | None = None,
        providers: Providers | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self._store = store
        self._providers = providers
        self._limits_shared = False
        self.setup_done = False
        _RUNTIMES[app] = self

    @property
    def store(self) -> Store:
        if self._store is None:
            path = self.settings.store_path
            if path != ":memory:":
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._store = Store(path)
        return self._store

    @property
    def providers(self) -> Providers:
        if self._providers is None:
            built = build_providers(self.settings.providers)
            # The simulator has no retries of its own (the HTTP clients do).
            if self.settings.providers.kind == "simulator":
                built = with_retries(built)
            self._providers = built
        if not self._limits_shared:
            self._limits_shared = True
            share_rate_limits(self, self._providers)
        return self._providers

    def queue(self, logical: str) -> str:
        return self.settings.queue(logical)

    def queues(self) -> list[str]:
        """Every queue of this deployment, by its real name."""
        return [self.queue(q) for q in QUEUES]

    def key(self, *parts: str) -> str:
        """A Redis key of this deployment (locks, caches, indexes): ``processors:{ns}:...``."""
        return ":".join(("processors", "{" + self.settings.namespace + "}", *parts))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def share_rate_limits(rt: Runtime, providers: Providers) -> None:
    """Moves the HTTP clients' rate limits into Redis, so every worker process of this
    deployment shares each service's limit (10 requests/s to the transaction API in all,
    not per process). Providers without HTTP clients (the simulator) are left alone."""

    async def client() -> Any:
        await rt.app.connect()
        return rt.app.redis

    for provider in (providers.chain, providers.tokens, providers.polymarket, providers.alerts):
        for attr in ("http", "gamma", "data"):
            service = getattr(provider, attr, None)
            local = getattr(service, "limiter", None)
            if isinstance(local, RateLimiter):
                key = rt.key("ratelimit", str(getattr(service, "name", attr)))
                service.limiter = SharedRateLimiter(client, key, local.rate,  # type: ignore[union-attr]
                                                    burst=local.burst)  # fmt: skip


def runtime_of(app: streamq.App) -> Runtime:
    """The Runtime ``processors.app.build_app`` attached to ``app``."""
    rt = _RUNTIMES.get(app)
    if rt is None:
        raise ProcessorsError("this streamq App was not built by processors.app.build_app")
    return rt


def backoff_of(name: str, scale: float = 1.0) -> streamq.Backoff:
    spec = JOBS[name]
    base = spec.backoff_delay * scale
    if spec.backoff == "fixed":
        return streamq.Backoff.fixed(base)
    return streamq.Backoff.exponential(base, maximum=max(base, 60.0 * scale))


@contextlib.contextmanager
def mapped_errors() -> Any:
    """Maps the domain's errors onto what the broker should do with the job.

    Invalid input and missing data are final (dead letter at once, the plans'
    INVALID_WALLET_ADDRESS); a retryable provider failure is retried with the task's backoff
    (a 429 after the service's Retry-After); a non-retryable one is final.
    """
    try:
        yield
    except (InvalidWalletAddress, InsufficientData) as exc:
        raise streamq.Fatal(str(exc)) from exc
    except ProviderError as exc:
        if not exc.retryable:
            raise streamq.Fatal(str(exc)) from exc
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            raise streamq.Retry(str(exc), delay=float(retry_after)) from exc
        raise
    except ProcessorsError as exc:
        raise streamq.Fatal(str(exc)) from exc


# -- per-wallet locks -------------------------------------------------------------------------


def wallet_lock(rt: Runtime, wallet: str, *, ttl: float) -> Any:
    """Holds the wallet's lock: no two analyses of one wallet interleave their writes."""
    return named_lock(rt, f"wallet:{wallet}", ttl=ttl)


@contextlib.asynccontextmanager
async def named_lock(rt: Runtime, name: str, *, ttl: float) -> AsyncIterator[None]:
    """Holds the deployment-wide lock ``name`` (a ``streamq.Lock``, renewed while held).

    Waits up to ``settings.lock_wait`` seconds; if the lock stays taken the job is handed back
    with ``streamq.Retry`` (the plans' "already in progress" is a retry, not a failure). A lock
    lost while held raises ``streamq.LockError`` (the job fails and is retried).
    """
    lock = streamq.Lock(rt.app, f"{rt.settings.namespace}:{name}", ttl=ttl,
                        timeout=rt.settings.lock_wait)  # fmt: skip
    try:
        await lock.acquire()
    except streamq.LockError as exc:
        raise streamq.Retry(f"{name} is busy: {exc}", delay=1.0) from exc
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            lost = lock.lost
            released = await lock.release()
    if lost or not released:
        raise streamq.LockError(f"lock {name} was lost while held")


# -- the balance cache ------------------------------------------------------------------------

_balances_decoder = msgspec.json.Decoder(WalletBalances)
_encode = msgspec.json.Encoder().encode


async def read_cached_balances(rt: Runtime, wallet: str) -> WalletBalances | None:
    await rt.app.connect()
    raw = await rt.app.redis.get(rt.key("balance", wallet))
    return _balances_decoder.decode(raw) if raw else None


async def write_cached_balances(rt: Runtime, balances: WalletBalances, ttl: float) -> None:
    await rt.app.connect()
    await rt.app.redis.set(
        rt.key("balance", balances.wallet), _encode(balances), px=int(ttl * 1000)
    )


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
    got = await streamq.cached(rt.app, f"balance:{wallet}", CACHE.balances_ttl, request,
                               timeout=timeout)  # fmt: skip
    return msgspec.convert(got, WalletBalances)


# -- flows ------------------------------------------------------------------------------------


async def enqueue_flow(
    rt: Runtime,
    parent: streamq.EnqueueRequest,
    children: list[streamq.EnqueueRequest],
) -> streamq.JobHandle:
    """A parent held back by the broker until all its children are finished, however they
    ended; returns the parent's handle.

    The broker's own ``threshold`` policy counts jobs; the plans' threshold counts wallets (a
    wallet whose sync or balance fetch failed is one failure, not two), so the flow runs the
    parent regardless (``ignore``) and the parent applies the wallet threshold itself.
    """

    def node(r: streamq.EnqueueRequest, **extra: Any) -> streamq.Flow:
        return streamq.Flow(name=r.name, payload=r.payload, id=r.id, queue=r.queue,
                            priority=r.priority, request_id=r.request_id, **extra)  # fmt: skip

    return await rt.app.enqueue_flow(node(parent, policy="ignore",
                                          children=[node(c) for c in children]))  # fmt: skip


# -- schedules --------------------------------------------------------------------------------


def schedule(
    app: streamq.App, name: str, *, cron: str | None, every: float | None, overlap: bool
) -> None:
    """Registers a recurring job with streamq's scheduler (every worker runs one; each tick's
    job id derives from the tick, so a tick fires once however many run)."""
    when: dict[str, Any] = {"cron": cron, "tz": "UTC"} if cron is not None else {"every": every}
    app.schedule(name, {}, overlap=overlap, **when)


# Workers re-read a queue's rate limit about once a second; jobs enqueued sooner after the
# limit is first written could start before any worker knows of it.
LIMIT_PICKUP = 1.5


async def ensure_setup(app: streamq.App) -> bool:
    """What needs Redis once per deployment: the alert queue's rate limit (kept in Redis, so
    it binds every worker). Idempotent and cheap; called by the routes, the demo and the
    anomaly batch (the producer of alerts), so a worker-only deployment sets it too.
    Returns True when this call wrote it (the caller holds alerts back ``LIMIT_PICKUP``)."""
    rt = runtime_of(app)
    if rt.setup_done:
        return False
    await app.rate_limit(rt.queue(POLYMARKET_ALERTS), rt.settings.alert_limit,
                         rt.settings.alert_window)  # fmt: skip
    rt.setup_done = True
    return True


# -- the per-wallet job index (GET /api/v1/jobs/wallet/{address}/active) ---------------------


async def index_wallet_job(rt: Runtime, wallet: str, queue: str, job_id: str) -> None:
    await rt.app.connect()
    key = rt.key("wallet-jobs", wallet)
    ttl = int(rt.settings.wallet_index_ttl)
    async with rt.app.redis.pipeline(transaction=False) as pipe:
        pipe.zadd(key, {f"{queue}\n{job_id}": time.time()})
        pipe.zremrangebyscore(key, 0, time.time() - ttl)
        pipe.expire(key, ttl)
        await pipe.execute()


async def wallet_jobs(rt: Runtime, wallet: str) -> list[tuple[str, str]]:
    await rt.app.connect()
    raw = await rt.app.redis.zrange(rt.key("wallet-jobs", wallet), 0, -1)
    out = []
    for item in raw:
        queue, _, job_id = item.decode().partition("\n")
        out.append((queue, job_id))
    return out
