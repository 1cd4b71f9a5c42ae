"""How one processors deployment runs: where its data lives, which providers it talks to, and
the queue names it uses.

Queue names are the plans' (``processors.config``); ``queue_prefix``/``queue_suffix`` wrap them
so tests (and side-by-side deployments) run on their own queues. Environment variables:

- ``STREAMQ_DATA_DIR``: directory of the SQLite file (default ``./.streamq``; the file is
  ``processors.db``); ``PROCESSORS_DB`` names the file outright;
- ``PROCESSORS_QUEUE_PREFIX`` / ``PROCESSORS_QUEUE_SUFFIX``;
- ``PROCESSORS_PROVIDERS`` and the ``SIM_*`` / service variables of
  ``processors.providers.factory``;
- ``STREAMQ_REDIS_URL`` is read by streamq itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from processors.config import RATE_LIMITS
from processors.errors import ProcessorsError
from processors.providers.factory import ProviderSettings

__all__ = ["Settings"]

_ALERTS_PER_MINUTE = round(RATE_LIMITS.webhook_rps * 60)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    app_name: str = "processors"
    redis_url: str | None = None  # None: $STREAMQ_REDIS_URL, else the embedded server
    store_path: str = "./.streamq/processors.db"
    queue_prefix: str = ""
    queue_suffix: str = ""
    providers: ProviderSettings = msgspec.field(default_factory=ProviderSettings)
    # Multiplies every retry backoff: 1.0 in production; tests shrink it to keep retries fast.
    backoff_scale: float = 1.0
    # How long a job waits for a per-wallet lock before handing the job back for a retry.
    lock_wait: float = 120.0
    # How long the similarity parent waits for its parallel enrichment before returning without it.
    enrichment_wait: float = 10.0
    # Alerts: at most this many deliveries per window across all workers (Discord: 30 a minute).
    alert_limit: int = _ALERTS_PER_MINUTE
    alert_window: float = 60.0
    # Register the recurring jobs (maintenance, the hourly whale update, the 30 s anomaly batch).
    schedules: bool = True
    # Recurring jobs run every N seconds instead of on their plan's schedule (tests, demos).
    schedule_every: dict[str, float] = msgspec.field(default_factory=dict)
    # Dashboard and similarity jobs kept findable per wallet for this long (the "active" lookup).
    wallet_index_ttl: float = 3600.0

    def queue(self, logical: str) -> str:
        """The real name of one of the plans' queues under this deployment's prefix/suffix."""
        return f"{self.queue_prefix}{logical}{self.queue_suffix}"

    @property
    def namespace(self) -> str:
        """Tag that keeps this deployment's own Redis keys apart from another's."""
        return f"{self.queue_prefix}{self.app_name}{self.queue_suffix}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; raises ProcessorsError on a malformed value."""
        e = os.environ if env is None else env
        data_dir = Path(e.get("STREAMQ_DATA_DIR") or "./.streamq")
        return cls(
            store_path=e.get("PROCESSORS_DB") or str(data_dir / "processors.db"),
            queue_prefix=e.get("PROCESSORS_QUEUE_PREFIX", ""),
            queue_suffix=e.get("PROCESSORS_QUEUE_SUFFIX", ""),
            providers=ProviderSettings.from_env(e),
            alert_limit=_int(e, "PROCESSORS_ALERT_LIMIT", _ALERTS_PER_MINUTE),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ProcessorsError(f"{name} must be an integer, not {raw!r}") from None
