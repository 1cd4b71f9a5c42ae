"""Request limits: body size, JSON depth, per-caller rate, concurrent SSE connections.

All of them answer with the error envelope: 413 for too much data, 429 (with ``Retry-After``)
for too many requests or streams, 400 for JSON nested deeper than allowed.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import OrderedDict
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from server.errors import ApiError

T = TypeVar("T")


async def read_body(request: Request, limit: int, timeout: float | None = None) -> bytes:
    """The request body, or ApiError 413 as soon as it exceeds ``limit`` bytes, or 408 when
    it takes longer than ``timeout`` seconds (the server's ``body_timeout_seconds`` if None).

    The declared Content-Length is checked first so an honest oversized upload is refused
    without reading it; the running total catches chunked or lying clients.
    """
    early: bytes | None = getattr(request.state, "body", None)
    if early is not None:  # read by the route guard, before the request deadline began
        return early
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if size > limit:
            raise _too_large(limit)
    if timeout is None:
        state = getattr(request.app.state, "streamq", None)
        timeout = getattr(getattr(state, "settings", None), "body_timeout_seconds", 10.0)
    chunks: list[bytes] = []
    total = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(
            408,
            "request_timeout",
            f"the request body did not arrive within {timeout:g}s",
            headers={"Connection": "close"},
        ) from None
    return b"".join(chunks)


async def read_json(request: Request, type_: type[T]) -> T:
    """The request's JSON body decoded as ``type_``, read within the server's ``max_body_bytes``:
    ApiError 413 / 408 as ``read_body``, 400 / 422 as ``decode_json``."""
    limit: int = request.app.state.streamq.settings.max_body_bytes
    body: T = decode_json(await read_body(request, limit), type_)
    return body


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body exceeds {limit} bytes")


def decode_json(body: bytes, type_: type[Any], *, prefix: str = "$") -> Any:
    """Decode ``body`` as ``type_``: ApiError 400 for broken JSON, 422 for the wrong shape."""
    if not body.strip():
        raise ApiError(400, "bad_request", "the request needs a JSON body")
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, prefix) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "payload_too_deep", "JSON nesting is too deep") from None


def validation_error(exc: msgspec.ValidationError, prefix: str = "$") -> ApiError:
    """A 422 carrying msgspec's field path, re-rooted under ``prefix``."""
    message = str(exc)
    path = prefix
    marker = " - at `"
    if marker in message and message.endswith("`"):
        message, _, raw_path = message.rpartition(marker)
        path = prefix + raw_path[1:-1]  # "$.a.b`" -> ".a.b"
    return ApiError(422, "invalid_payload", f"{message} - at `{path}`", path=path)


def check_payload(raw: bytes, *, max_bytes: int, max_depth: int, where: str) -> None:
    """Refuse a payload larger than ``max_bytes`` (413) or nested deeper than ``max_depth`` (400).

    Depth is measured on the raw JSON text (brackets outside strings), so an absurdly deep
    document is refused before any decoder recurses into it.
    """
    if len(raw) > max_bytes:
        raise ApiError(
            413, "payload_too_large", f"{where} is {len(raw)} bytes; the limit is {max_bytes}"
        )
    depth = json_depth(raw, stop_above=max_depth)
    if depth > max_depth:
        raise ApiError(
            400,
            "payload_too_deep",
            f"{where} nests more than {max_depth} levels deep",
            path=where,
        )


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes, stop_above: int | None = None) -> int:
    """Maximum bracket nesting of a JSON text, ignoring brackets inside strings.

    With ``stop_above`` the scan ends as soon as the depth exceeds it.
    """
    depth = deepest = 0
    # Regexes do the byte scanning in C; Python only walks the brackets themselves.
    for match in _BRACKETS.finditer(_STRING.sub(b"", raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
            if stop_above is not None and deepest > stop_above:
                break
        else:
            depth -= 1
    return deepest


class RateLimiter:
    """A token bucket per caller: ``rate`` requests per second, bursts up to ``burst``.

    Buckets live in an LRU capped at ``max_callers`` so a flood of distinct callers cannot
    grow memory without bound (an evicted caller just starts with a full bucket).
    """

    def __init__(self, rate: float, burst: int, max_callers: int = 10_000) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._max = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(
        self, key: str, now: float | None = None, *, cost: float = 1.0, what: str = "requests"
    ) -> None:
        """Take ``cost`` tokens for ``key`` or raise ApiError 429 with ``Retry-After`` seconds
        (nothing is taken then)."""
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        cost = min(cost, float(self.burst))  # a cost above the bucket would never fit
        tokens = self._level(key, now)
        if tokens < cost:
            self._store(key, tokens, now)
            raise self._refusal(tokens, cost, f"rate limit of {self.rate:g} {what}/s exceeded")
        self._store(key, tokens - cost, now)

    def exhausted(self, key: str) -> bool:
        """True while ``key`` has less than one token (nothing is taken)."""
        if self.rate <= 0:
            return False
        now = time.monotonic()
        tokens = self._level(key, now)
        self._store(key, tokens, now)
        return tokens < 1.0

    def take(self, key: str, cost: float = 1.0) -> None:
        """Take ``cost`` tokens for ``key`` without refusing (down to empty)."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        self._store(key, max(0.0, self._level(key, now) - cost), now)

    def refusal(self, key: str, message: str) -> ApiError:
        """The 429 for ``key`` now, with the wait until one token is back."""
        now = time.monotonic()
        tokens = self._level(key, now)
        self._store(key, tokens, now)
        return self._refusal(tokens, 1.0, message)

    def _level(self, key: str, now: float) -> float:
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.rate)

    def _refusal(self, tokens: float, cost: float, message: str) -> ApiError:
        retry = max(1, math.ceil((min(cost, self.burst) - tokens) / self.rate))
        return ApiError(429, "rate_limited", message, headers={"Retry-After": str(retry)})

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)


class StreamSlots:
    """Counts open SSE connections per caller and refuses more than ``limit`` (429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self._open.values())

    def acquire(self, key: str) -> None:
        count = self._open.get(key, 0)
        if count >= self.limit:
            raise ApiError(
                429,
                "too_many_streams",
                f"at most {self.limit} concurrent event streams per token",
                headers={"Retry-After": "5"},
            )
        self._open[key] = count + 1

    def release(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)
