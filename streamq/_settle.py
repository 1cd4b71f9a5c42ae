"""Batched settlement: outcomes of finished deliveries go to Redis in one script call per
queue, group-commit style (a flush in flight collects the next batch), so an idle worker adds no
delay and a busy one pays one round trip for many jobs."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, cast

from streamq._metrics import JOBS_FENCED
from streamq._scripts import FINAL_OUTCOMES, FinalOutcome, Outcome, Settlement, new_token

if TYPE_CHECKING:
    from streamq._broker import Broker
    from streamq._delivery import Delivery, FinishHook

log = logging.getLogger(__name__)

_MAX_BATCH = 500


class Settler:
    def __init__(self, broker: Broker, finish_hooks: list[FinishHook]) -> None:
        self._broker = broker
        # The application's list, read at each flush (hooks may be added after start).
        self._hooks = finish_hooks
        self._buffer: dict[str, list[tuple[Delivery, Settlement]]] = defaultdict(list)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def add(
        self,
        delivery: Delivery,
        outcome: Outcome,
        *,
        data: bytes | str = b"",
        ttl_ms: int = 0,
        delay_ms: int = 0,
        count_attempt: bool = True,
        reason: str = "",
    ) -> None:
        """Queues one outcome for ``delivery`` (see :class:`streamq._scripts.Settlement`)."""
        delivery.settling = True
        settlement = Settlement(
            outcome=outcome,
            job_id=delivery.job_id,
            lane=delivery.lane,
            entry_id=delivery.entry_id,
            fence=delivery.fence,
            data=data,
            ttl_ms=ttl_ms,
            delay_ms=delay_ms,
            count_attempt=count_attempt,
            reason=reason,
        )
        self._buffer[delivery.queue].append((delivery, settlement))
        self._idle.clear()
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._buffer = self._buffer, defaultdict(list)
            await asyncio.gather(*(self._flush(q, items) for q, items in batch.items()))
            if not self._buffer:
                self._idle.set()

    async def drain(self) -> None:
        """Returns when every queued outcome has been written."""
        await self._idle.wait()

    async def _flush(self, queue: str, items: list[tuple[Delivery, Settlement]]) -> None:
        for start in range(0, len(items), _MAX_BATCH):
            chunk = items[start : start + _MAX_BATCH]
            delay = 0.05
            # One token for every try: a try that landed although its reply was lost answers
            # the next one with its own reply (applied), so nothing reads as fenced out.
            token = new_token()
            while True:
                try:
                    applied = await self._broker.scripts.settle(
                        queue, [s for _, s in chunk], token=token
                    )
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Redis away: keep the outcomes and try again; the fence makes a retry of
                    # an outcome that did land (after its reply was forgotten) a no-op.
                    log.warning("settling %d outcomes on %s failed: %s", len(chunk), queue, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
            if self._hooks:
                done = [
                    (d, cast("FinalOutcome", s.outcome))
                    for (d, s), ok in zip(chunk, applied, strict=True)
                    if ok and s.outcome in FINAL_OUTCOMES
                ]
                await self._run_hooks(done)
            fenced = len(applied) - sum(applied)
            if fenced:
                JOBS_FENCED.labels(queue).inc(fenced)
                log.info("%d outcomes on %s refused: their leases were taken", fenced, queue)

    async def _run_hooks(self, done: list[tuple[Delivery, FinalOutcome]]) -> None:
        """Runs the app's finish hooks (flows use them) for outcomes that were applied."""
        calls = [hook(self._broker, d, outcome) for d, outcome in done for hook in self._hooks]
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, BaseException):
                log.error("finish hook failed: %r", result)
