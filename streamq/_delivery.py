"""The worker's record of one delivery, and the hooks that hear how deliveries ended."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

from streamq._scripts import Lease

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._scripts import FinalOutcome
    from streamq._types import JobSpec


@dataclass(slots=True, eq=False)
class Delivery:
    """One delivery of a job to this worker, with the fencing token that guards its outcome."""

    queue: str
    lane: str
    entry_id: str
    job_id: str
    spec: JobSpec
    attempt: int
    fence: int
    deliveries: int
    # Its earlier delivery died with its worker: it runs alone (see fetch-4.lua).
    suspect: bool = False
    task: asyncio.Task[None] | None = None
    # Why the handler was cancelled by the worker: "cancel", "lost" or "shutdown".
    stop_reason: str | None = None
    settling: bool = field(default=False)

    @property
    def lease(self) -> Lease:
        """What proves this delivery still holds the job: its entry and fencing token."""
        return Lease(self.job_id, self.lane, self.entry_id, self.fence)


FinishHook: TypeAlias = "Callable[[Broker, Delivery, FinalOutcome], Awaitable[None]]"
"""Called as ``await hook(broker, delivery, outcome)`` once a worker's final outcome for a
delivery is written (flows use it to tell the parent)."""
