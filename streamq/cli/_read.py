"""Checks of what ``streamq inspect`` and the other queue commands are given (a known queue,
a known lane). The reads themselves are the broker's read model, ``streamq._inspect``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamq._types import LANES
from streamq.cli._output import UsageError

if TYPE_CHECKING:
    from streamq._app import App


async def check_queue(app: App, queue: str) -> None:
    """Raises UsageError unless ``queue`` is in the registry (``sq:queues``)."""
    names = await app.queue_names()
    if queue not in names:
        known = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise UsageError(f"unknown queue {queue!r}; known queues: {known or 'none'}")


def check_lane(lane: str | None) -> None:
    """Raises UsageError unless ``lane`` is None or one of the lanes."""
    if lane is not None and lane not in LANES:
        raise UsageError(f"unknown lane {lane!r}; lanes: {', '.join(LANES)}")
