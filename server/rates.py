"""Changes of a queue's counters over time, measured by sampling its totals: what the
dashboard's live charts and per-minute series are drawn from.

This is not the API's "rates": ``GET /v1/queues`` and ``streamq inspect`` report the read
model's rates (``streamq.ReadModel``: events per second over the last minute of the events
stream, read from Redis, so every reader agrees). A chart needs history a single read cannot
give, so the server samples every queue's totals in the background and keeps them here.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping


class RateTracker:
    """Keeps (time, totals) samples per queue for ``window`` seconds."""

    def __init__(self, window: float = 60.0, max_queues: int = 10_000) -> None:
        self.window = window
        self._max_queues = max_queues
        self._samples: dict[str, deque[tuple[float, dict[str, int]]]] = {}

    def record(self, queue: str, totals: Mapping[str, int], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        samples = self._samples.get(queue)
        if samples is None:
            if len(self._samples) >= self._max_queues:
                return
            samples = self._samples[queue] = deque()
        # Samples closer than 0.5 s add nothing but noise; replace the newest instead.
        if samples and now - samples[-1][0] < 0.5 and len(samples) > 1:
            samples.pop()
        samples.append((now, dict(totals)))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()

    def rates(self, queue: str) -> dict[str, float]:
        """Counter name -> events per second over the window; empty before two samples."""
        samples = self._samples.get(queue)
        if not samples or len(samples) < 2:
            return {}
        (t0, first), (t1, last) = samples[0], samples[-1]
        elapsed = t1 - t0
        if elapsed <= 0:
            return {}
        return {
            name: round(max(0, value - first.get(name, 0)) / elapsed, 3)
            for name, value in last.items()
        }
