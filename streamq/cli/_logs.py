"""Logging of the long-running commands (``run`` and the ``serve``/``worker`` children it
starts): while Redis is unreachable, every loop of a worker and of the server warns about it;
:class:`ThrottleUnreachable` lets one such line through per interval per process, saying how
many it held back, so an outage reads as a few lines, not a flood."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

# What redis-py and streamq say when the server cannot be reached or is still loading.
UNREACHABLE = re.compile(
    r"Error \d+ connecting|Connect call failed|Connection refused|Connection reset|"
    r"Connection closed|Timeout connecting|Redis unavailable|Redis is loading|LOADING"
)
INTERVAL_S = 5.0


class ThrottleUnreachable(logging.Filter):
    """Passes at most one "Redis unreachable" warning per ``interval`` seconds; the next one
    let through counts the ones held back. Other records pass untouched."""

    def __init__(
        self, interval: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._last = float("-inf")
        self._held = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not self._unreachable(record):
            return True
        now = self.clock()
        with self._lock:
            if now - self._last < self.interval:
                self._held += 1
                return False
            self._last = now
            held, self._held = self._held, 0
        if held:
            record.msg = f"{record.getMessage()} (and {held} more such warnings held back)"
            record.args = None
        return True

    @staticmethod
    def _unreachable(record: logging.LogRecord) -> bool:
        if UNREACHABLE.search(record.getMessage()):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        return exc is not None and bool(UNREACHABLE.search(str(exc)))


def throttle_unreachable(interval: float = INTERVAL_S) -> None:
    """Installs one :class:`ThrottleUnreachable` on every handler of the root logger (filters
    on a logger would miss the records of its children)."""
    shared = ThrottleUnreachable(interval)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ThrottleUnreachable) for f in handler.filters):
            handler.addFilter(shared)
