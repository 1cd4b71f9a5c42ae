"""The per-application server state handlers reach through ``request.app.state``, and the
lookups every handler shares: is this a queue, is this a well-formed id."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import streamq
from server.auth import Authenticator, Principal
from server.errors import ApiError
from server.limits import RateLimiter, StreamSlots
from server.metrics import ServerMetrics
from server.rates import RateTracker
from server.readiness import Readiness
from server.schemas import ENTRY_ID_PATTERN, JOB_ID_PATTERN
from server.settings import ServerSettings
from server.sse import EventHub

_JOB_ID = re.compile(JOB_ID_PATTERN)
_MAX_QUEUE_NAME = 200
_ENTRY_ID = re.compile(ENTRY_ID_PATTERN)
_MAX_U64 = 2**64 - 1
_INTEGER = re.compile(r"-?[0-9]{1,9}")
_encoder = msgspec.json.Encoder()
# A queue seen in the registry stays a queue (the registry only grows), so positive answers
# are cached; negative ones are asked again after this many seconds.
_NEGATIVE_TTL = 1.0


class ServerState:
    """Everything one server instance owns; created by ``create_app``."""

    def __init__(self, settings: ServerSettings, app: streamq.App) -> None:
        self.settings = settings
        self.app = app
        self.auth = Authenticator(settings)
        self.probes = RateLimiter(settings.probe_rate_per_second, settings.probe_burst)
        self.enqueued_jobs = RateLimiter(settings.enqueue_per_second, settings.enqueue_burst)
        self.enqueued_bytes = RateLimiter(
            settings.enqueue_bytes_per_minute / 60.0, settings.enqueue_bytes_per_minute
        )
        self.rate = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        self.slots = StreamSlots(settings.sse_max_per_token)
        self.redis_slots = asyncio.Semaphore(max(1, settings.max_concurrent_redis))
        self.hub = EventHub(app, buffer=settings.sse_client_buffer)
        self.rates = RateTracker()
        self.metrics = ServerMetrics(
            app,
            sse_clients=lambda: self.slots.total,
            rates=self.rates,
            deadline=settings.request_deadline_seconds,
        )
        self.readiness = Readiness(
            app,
            deadline=settings.request_deadline_seconds,
            cache_seconds=settings.readiness_cache_seconds,
        )
        self.openapi: dict[str, object] = {}
        self._known_queues: set[str] = set()
        self._unknown_checked: dict[str, float] = {}

    def task_queues(self) -> list[str]:
        return sorted(set(self.app.queues_of_tasks()))

    async def queue_names(self) -> list[str]:
        """Every queue: the registry's and the ones this app has tasks for."""
        names = set(await self.app.queue_names()) | set(self.task_queues())
        self._known_queues |= names
        return sorted(names)

    async def require_queue(self, queue: str) -> str:
        """``queue`` if it exists, else ApiError 404 ``unknown_queue``."""
        if queue in self._known_queues:
            return queue
        if queue in self.task_queues():
            self._known_queues.add(queue)
            return queue
        now = time.monotonic()
        if len(queue) <= _MAX_QUEUE_NAME and now - self._unknown_checked.get(queue, -1e9) >= (
            _NEGATIVE_TTL
        ):
            if len(self._unknown_checked) > 10_000:
                self._unknown_checked.clear()
            self._unknown_checked[queue] = now
            if queue in set(await self.app.queue_names()):
                self._known_queues.add(queue)
                return queue
        raise ApiError(404, "unknown_queue", f"no queue named {queue!r}")

    def forget_queue(self, queue: str) -> None:
        """After ``queue`` was deleted: found again only if it is registered again."""
        self._known_queues.discard(queue)


@dataclass(frozen=True)
class Call:
    """What a handler gets besides the request: the server state and the caller."""

    state: ServerState
    principal: Principal | None

    @property
    def app(self) -> streamq.App:
        return self.state.app

    @property
    def caller(self) -> str:
        """The caller's key for limits and quotas."""
        return self.principal.key if self.principal else "anonymous"

    @property
    def name(self) -> str:
        """The caller's name for logs and audit records (never a secret)."""
        return self.principal.name if self.principal else "anonymous"

    def allows(self, scope: str, queue: str | None = None) -> bool:
        """``scope`` on ``queue`` (open endpoints: everything)."""
        return self.principal is None or self.principal.allows(scope, queue)

    def sees_payloads(self, queue: str) -> bool:
        """False for a ``meta``-only caller: payloads, results and errors are withheld."""
        return self.allows("read", queue)


def server_state(request: Request) -> ServerState:
    state = getattr(request.app.state, "streamq", None)
    assert isinstance(state, ServerState), "the app was not built by server.create_app"
    return state


def check_job_id(job_id: str) -> str:
    """``job_id`` if well formed, else ApiError 400 ``invalid_job_id``."""
    if not _JOB_ID.fullmatch(job_id):
        raise ApiError(
            400,
            "invalid_job_id",
            "a job id is 1-200 characters of letters, digits and ._:@-",
        )
    return job_id


def check_entry_id(entry_id: str, what: str = "id") -> str:
    """A Redis stream entry id (``<ms>-<seq>``), else ApiError 400."""
    if not _ENTRY_ID.fullmatch(entry_id) or any(
        int(part) > _MAX_U64 for part in entry_id.split("-")
    ):
        raise ApiError(400, "invalid_entry_id", f"{what} must look like 1732262400000-0")
    return entry_id


def json_response(body: object, status: int = 200) -> Response:
    return Response(_encoder.encode(body), status, media_type="application/json")


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], else ApiError 400 (never clamped)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # Stricter than int(): no spaces, "+", or "1_000".
    value = int(raw) if _INTEGER.fullmatch(raw) else low - 1
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer in {low}..{high}")
    return value
