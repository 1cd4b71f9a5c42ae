"""Endpoints declared once, as Operations: the router, the auth guard and the OpenAPI
document are all built from the same list, so the schema cannot drift from the code.

Processors declare their own endpoints the same way and pass them to ``create_app`` to get
auth, rate limits, metrics labels and an entry in ``/openapi.json`` for free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server import audit
from server.auth import Principal, client_address, insufficient
from server.errors import broker_unavailable
from server.guard import CALLER_KEY
from server.limits import read_body

if TYPE_CHECKING:
    from server.context import Call

Scope = Literal["read", "write", "admin"]
Handler = Callable[[Request, "Call"], Awaitable[Response]]

# A response "type" that is a server-sent-event stream rather than a JSON body.
EVENT_STREAM = "text/event-stream"
# A response "type" that is Prometheus text, HTML, ...: (media type, description[, schema]).
RawBody = tuple[Any, ...]


@dataclass(frozen=True)
class Param:
    """A query or header parameter (path parameters come from the path template)."""

    name: str
    location: Literal["query", "header"]
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """One method on one path: its handler and everything the OpenAPI document says about it.

    ``responses`` maps a success status to a msgspec type, ``EVENT_STREAM``, a ``RawBody``
    or None (no body). Error statuses are added from ``scope``, ``body`` and the path.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler
    scope: Scope | None = "read"
    body: type[Any] | None = None
    responses: dict[int, Any] = field(default_factory=dict)
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()  # extra error statuses the handler can answer with
    tags: tuple[str, ...] = ()
    description: str = ""
    rate_limited: bool = True
    # A ``read`` operation whose handler withholds payloads, results and errors from a
    # ``meta``-only caller (so ``meta`` grants suffice).
    meta_ok: bool = False
    # Without a {queue} in the path the scope must cover every queue, unless the handler
    # filters what it returns per queue itself (e.g. the queue list).
    queue_filtered: bool = False
    # Rate-limited per client address, whatever the token (health and metrics probes).
    probe: bool = False
    # The handler runs within the server's request deadline (a 503 when Redis does not answer
    # in time). Off only for a handler that bounds its own waits, or computes for longer.
    bounded: bool = True
    # OpenAPI links from this operation's success responses: name -> Link Object.
    links: dict[str, dict[str, Any]] = field(default_factory=dict)


class OperationTable:
    """Collects Operations through a decorator, in declaration order.

    ``defaults`` are the Operation options every declaration starts from (a module's tags,
    scope, ...), so each route states only what differs; ``preset`` adds more for a group of
    routes, collecting into the same list."""

    def __init__(self, **defaults: Any) -> None:
        self.operations: list[Operation] = []
        self.defaults = defaults

    def __call__(
        self, method: str, path: str, *, summary: str, **options: Any
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method=method,
                    path=path,
                    operation_id=handler.__name__.strip("_"),
                    summary=summary,
                    handler=handler,
                    description=(handler.__doc__ or "").strip(),
                    **{**self.defaults, **options},
                )
            )
            return handler

        return register

    def get(self, path: str, *, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self("GET", path, summary=summary, **options)

    def post(self, path: str, *, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self("POST", path, summary=summary, **options)

    def preset(self, **defaults: Any) -> OperationTable:
        """A table declaring into this one's list, with ``defaults`` over this one's."""
        group = OperationTable(**{**self.defaults, **defaults})
        group.operations = self.operations
        return group


def bound_handler(
    handler: Callable[..., Awaitable[Response]], name: str, doc: str | None = None, **arguments: Any
) -> Handler:
    """``handler(request, call, **arguments)`` as a Handler named ``name`` (its operation id)
    with ``doc`` (its description): one body serving several routes that differ by an
    argument."""

    async def bound(request: Request, call: Call) -> Response:
        return await handler(request, call, **arguments)

    bound.__name__ = name
    bound.__doc__ = doc
    return bound


def build_routes(operations: Sequence[Operation]) -> list[Route]:
    """One Starlette Route per path, dispatching on the method to each Operation's guarded
    handler, so a wrong method is a 405 whose ``Allow`` names every method of the path."""
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for op in operations:
        by_path.setdefault(op.path, {})[op.method] = _guarded(op)
    return [
        Route(path, _dispatch(handlers), methods=list(handlers), name=path)
        for path, handlers in by_path.items()
    ]


def _dispatch(
    handlers: dict[str, Callable[[Request], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return endpoint


def _guarded(op: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        from server.context import Call, server_state

        state = server_state(request)
        if op.probe:
            state.probes.check(client_address(request, state.auth.trusted))
        principal = None
        if op.scope is not None:
            principal = state.auth.identify(request)
            request.scope[CALLER_KEY] = principal.name
        if principal is None or op.scope not in ("write", "admin"):
            return await _serve(request, op, Call(state=state, principal=principal))
        try:
            response = await _serve(request, op, Call(state=state, principal=principal))
        except BaseException as exc:
            status, outcome = audit.outcome_of(exc)
            audit.record(request, op.operation_id, principal.name, status, outcome)
            raise
        audit.record(request, op.operation_id, principal.name, response.status_code, "ok")
        return response

    endpoint.__name__ = op.operation_id
    return endpoint


async def _serve(request: Request, op: Operation, call: Call) -> Response:
    """The scope check, rate limit and body read, then the handler (within the deadline)."""
    state, principal = call.state, call.principal
    if principal is not None and op.scope is not None:
        queue = request.path_params.get("queue")
        if not permitted(principal, op, queue):
            raise insufficient(op.scope, queue)
        if op.rate_limited:
            state.rate.check(principal.key)
    if op.body is not None:
        # Read before the deadline starts: a slow upload is a 408, not a Redis 503.
        request.state.body = await read_body(request, state.settings.max_body_bytes)
    if not op.bounded:
        async with state.redis_slots:
            return await op.handler(request, call)
    deadline = asyncio.timeout(state.settings.request_deadline_seconds)
    try:
        async with deadline, state.redis_slots:
            return await op.handler(request, call)
    except TimeoutError:
        if not deadline.expired():
            raise
        raise broker_unavailable(request, "no answer within the request deadline") from None


def permitted(principal: Principal, op: Operation, queue: str | None) -> bool:
    """Whether ``principal`` may call ``op`` on ``queue`` (None: no queue in the path)."""
    assert op.scope is not None
    kinds = [op.scope, "meta"] if op.scope == "read" and op.meta_ok else [op.scope]
    for kind in kinds:
        if queue is not None:
            if principal.allows(kind, queue):
                return True
        elif principal.allows_some(kind) if op.queue_filtered else principal.allows(kind):
            return True
    return False
