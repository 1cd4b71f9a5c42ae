"""Connection limits uvicorn lacks: a cap on open connections and a deadline for a request's
headers (a slowloris client, or one that connects and sends nothing, is dropped).

uvicorn bounds only the idle time between two requests of a keep-alive connection
(``timeout_keep_alive``) and counts connections for ``limit_concurrency`` without closing
any. ``guarded_protocol`` returns uvicorn's h11 protocol with both limits added:

- a connection beyond ``max_connections`` is closed as soon as it is accepted;
- from its first moment, and again from the first byte of each later request, a connection
  must deliver a complete request head within ``header_timeout`` seconds, else it is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

# Refused-connection warnings at most this often (a flood must not flood the log too).
_WARN_EVERY = 10.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and a request-head deadline."""

    max_connections = 2048
    header_timeout = 5.0
    _last_warning = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._warn(f"{len(self.connections) - 1} connections open (the cap); closing one")
            self.connections.discard(self)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head():
            self._arm()
        super().data_received(data)
        if not self._awaiting_head():
            self._disarm()

    def _awaiting_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._awaiting_head() and not self.transport.is_closing():
            log.info(
                "closing %s: no complete request head in %gs",
                _peer(self.client),
                self.header_timeout,
            )
            self.transport.close()

    @classmethod
    def _warn(cls, message: str) -> None:
        now = time.monotonic()
        if now - cls._last_warning >= _WARN_EVERY:
            cls._last_warning = now
            log.warning(message)


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"


def guarded_protocol(*, max_connections: int, header_timeout: float) -> type[GuardedH11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    return type(
        "StreamqH11Protocol",
        (GuardedH11Protocol,),
        {
            "max_connections": max_connections,
            "header_timeout": header_timeout,
            "_last_warning": 0.0,
        },
    )
