"""Batched settlement: outcomes of finished deliveries go to Redis in one script call per
queue, group-commit style (a flush in flight collects the next batch), so an idle worker adds no
delay and a busy one pays one round trip for many jobs."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streamq import _keys
from streamq._metrics import JOBS_FENCED

if TYPE_CHECKING:
    from streamq._app import App
    from streamq._context import Delivery

log = logging.getLogger(__name__)

_MAX_BATCH = 500
_FINAL = ("c", "d", "x")


class Settler:
    def __init__(self, app: App) -> None:
        self._app = app
        self._buffer: dict[str, list[tuple[Delivery, Sequence[Any]]]] = defaultdict(list)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def add(
        self, delivery: Delivery, outcome: str, data: bytes | str, number: int, text: str = ""
    ) -> None:
        """Queues one outcome: c(ompleted), r(etry), d(ead), x (cancelled), h(and back)."""
        delivery.settling = True
        self._buffer[delivery.queue].append(
            (
                delivery,
                (
                    outcome,
                    delivery.job_id,
                    delivery.lane,
                    delivery.entry_id,
                    delivery.fence,
                    data,
                    number,
                    text,
                ),
            )
        )
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

    async def _flush(self, queue: str, items: list[tuple[Delivery, Sequence[Any]]]) -> None:
        app = self._app
        keys = [_keys.events(queue), _keys.stats(queue)]
        head = [_keys.prefix(queue), _keys.GROUP, app.events_maxlen, app.dead_maxlen, app.keep_last]
        for start in range(0, len(items), _MAX_BATCH):
            chunk = items[start : start + _MAX_BATCH]
            args = head + [a for _, fields in chunk for a in fields]
            delay = 0.05
            while True:
                try:
                    applied = await app.scripts.call("settle", keys, args)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Redis away: keep the outcomes and try again; the fence makes a retry of
                    # an outcome that did land a no-op.
                    log.warning("settling %d outcomes on %s failed: %s", len(chunk), queue, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
            if app.finish_hooks:
                done = [
                    (d, fields[0])
                    for (d, fields), ok in zip(chunk, applied, strict=True)
                    if ok and fields[0] in _FINAL
                ]
                await self._run_hooks(done)
            fenced = len(applied) - sum(applied)
            if fenced:
                JOBS_FENCED.labels(queue).inc(fenced)
                log.info("%d outcomes on %s refused: their leases were taken", fenced, queue)

    async def _run_hooks(self, done: list[tuple[Delivery, str]]) -> None:
        """Runs the app's finish hooks (flows use them) for outcomes that were applied."""
        calls = [
            hook(self._app, d, outcome) for d, outcome in done for hook in self._app.finish_hooks
        ]
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, BaseException):
                log.error("finish hook failed: %r", result)
