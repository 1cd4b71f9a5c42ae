"""Stand-ins for the real services: a Starlette app speaking their JSON from simulated data.

Tests run it under uvicorn on a free 127.0.0.1 port and point the HTTP providers at it; a demo
can do the same to exercise the HTTP path end to end without the internet. It serves:

- ``GET /v0/addresses/{address}/transactions`` and ``/balances`` (Helius; needs ``api-key``),
  with a plain SOL transfer mixed in after every 7th swap, as real histories have;
- ``GET /latest/dex/tokens/{a,b,...}`` (DexScreener, at most 30 addresses);
- ``GET /markets`` and ``GET /trades`` (Polymarket Gamma and Data APIs);
- ``POST /webhook`` (Discord; the bodies received are kept in :attr:`StandIn.webhooks`).

:meth:`StandIn.fail_next` queues error answers (503, 429 with ``Retry-After``...) or delays for
the next requests to a path prefix; :attr:`StandIn.requests` logs (monotonic time, path).
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from processors.providers import wire
from processors.providers.sim_polymarket import PolymarketWorld
from processors.providers.sim_world import SimWorld
from processors.providers.simulator import MAX_TOKENS_PER_CALL, SimulatedTokenData
from processors.solana import is_valid_address

__all__ = ["StandIn"]


class StandIn:
    """The stand-in services over one simulated world."""

    def __init__(
        self,
        world: SimWorld | None = None,
        polymarket: PolymarketWorld | None = None,
        *,
        api_key: str = "test-key",
    ) -> None:
        self.world = world or SimWorld()
        self.polymarket = polymarket or PolymarketWorld()
        self.api_key = api_key
        self.requests: list[tuple[float, str]] = []
        self.webhooks: list[Any] = []
        self._faults: list[tuple[str, int, float]] = []
        self._tokens = SimulatedTokenData(self.world)
        self.app = Starlette(
            routes=[
                Route("/v0/addresses/{address}/transactions", self._transactions),
                Route("/v0/addresses/{address}/balances", self._balances),
                Route("/latest/dex/tokens/{addresses}", self._dex_tokens),
                Route("/markets", self._markets),
                Route("/trades", self._trades),
                Route("/webhook", self._webhook, methods=["POST"]),
            ],
        )
        self.app.add_middleware(_Faults, standin=self)

    def fail_next(self, prefix: str, status: int, count: int = 1, *, delay: float = 0.0) -> None:
        """Answer the next ``count`` requests under ``prefix`` with ``status`` after ``delay`` s
        (status 0: answer normally, only late)."""
        self._faults.extend([(prefix, status, delay)] * count)

    def _take_fault(self, path: str) -> tuple[int, float] | None:
        for i, (prefix, status, delay) in enumerate(self._faults):
            if path.startswith(prefix):
                del self._faults[i]
                return status, delay
        return None

    def _history(self, address: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, s in enumerate(reversed(self.world.swaps(address))):
            out.append(wire.swap_to_helius(s))
            if i % 7 == 6:
                out.append(
                    {
                        "signature": f"transfer{i}{s.signature[:40]}",
                        "timestamp": s.timestamp,
                        "fee": 5000,
                        "feePayer": address,
                        "type": "TRANSFER",
                        "accountData": [
                            {
                                "account": address,
                                "nativeBalanceChange": -1_005_000,
                                "tokenBalanceChanges": [],
                            }
                        ],
                    }
                )
        return out

    async def _transactions(self, request: Request) -> Response:
        if request.query_params.get("api-key") != self.api_key:
            return JSONResponse({"error": "invalid api key"}, status_code=401)
        address = request.path_params["address"]
        if not is_valid_address(address):
            return JSONResponse({"error": "invalid address"}, status_code=400)
        history = self._history(address)
        before = request.query_params.get("before")
        start = 0
        if before is not None:
            start = next((i + 1 for i, t in enumerate(history) if t["signature"] == before), 0)
        limit = int(request.query_params.get("limit", "100"))
        return JSONResponse(history[start : start + limit])

    async def _balances(self, request: Request) -> Response:
        if request.query_params.get("api-key") != self.api_key:
            return JSONResponse({"error": "invalid api key"}, status_code=401)
        address = request.path_params["address"]
        return JSONResponse(wire.balances_to_helius(self.world.balances(address)))

    async def _dex_tokens(self, request: Request) -> Response:
        mints = request.path_params["addresses"].split(",")
        if len(mints) > MAX_TOKENS_PER_CALL:
            return JSONResponse({"error": "too many addresses"}, status_code=400)
        infos = await self._tokens.get_tokens(mints)
        return JSONResponse(wire.tokens_to_dexscreener(list(infos.values())))

    async def _markets(self, request: Request) -> Response:
        limit = int(request.query_params.get("limit", "100"))
        offset = int(request.query_params.get("offset", "0"))
        page = self.polymarket.markets[offset : offset + limit]
        return JSONResponse([wire.market_to_gamma(m) for m in page])

    async def _trades(self, request: Request) -> Response:
        q = request.query_params
        since = int(q.get("start", "0"))
        until = int(q["end"]) if "end" in q else None
        limit, offset = int(q.get("limit", "100")), int(q.get("offset", "0"))
        page = self.polymarket.trades_between(since, until)[offset : offset + limit]
        # The Data API lists newest first; the client must not rely on the order.
        return JSONResponse([wire.trade_to_data_api(t) for t in reversed(page)])

    async def _webhook(self, request: Request) -> Response:
        self.webhooks.append(await request.json())
        return Response(status_code=204)


class _Faults:
    """ASGI middleware: logs requests and plays the queued faults."""

    def __init__(self, app: Any, standin: StandIn) -> None:
        self.app = app
        self.standin = standin

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        self.standin.requests.append((time.monotonic(), path))
        fault = self.standin._take_fault(path)
        if fault is not None:
            status, delay = fault
            if delay:
                await anyio.sleep(delay)
            if status:
                headers = {"Retry-After": "0.2"} if status == 429 else {}
                response = JSONResponse(
                    {"error": f"injected {status}"}, status_code=status, headers=headers
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
