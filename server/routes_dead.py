"""Dead-letter endpoints (admin): list, replay one or all, purge one or all."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from server.context import Call, check_entry_id, json_response, query_int
from server.dead_groups import ErrorGroup, group_by_error
from server.errors import ApiError
from server.routing import OperationTable, Param
from server.schemas import ENTRY_ID_PATTERN, CountResult, DeadLetterList, DeadLetterView

operation = OperationTable()


class DeadLetterListing(DeadLetterList, frozen=True, kw_only=True, omit_defaults=True):
    """A page of dead letters; with ``group=error``, also ``groups``: the page's letters by
    error signature (the error's last line, numbers and quoted values masked), largest
    first."""

    groups: list[ErrorGroup] | None = None


Verb = Literal["replay", "purge"]
_MAX_COUNT = 1000
# Replay and purge, of one dead letter or all: admin calls answering how many they touched.
_counted = functools.partial(
    operation, scope="admin", responses={200: CountResult}, tags=("admin",)
)


@operation(
    "GET",
    "/v1/queues/{queue}/dead-letters",
    summary="List dead letters",
    scope="admin",
    responses={200: DeadLetterListing},
    params=(
        Param(
            "count",
            "query",
            {"type": "integer", "minimum": 1, "maximum": _MAX_COUNT, "default": 100},
            "How many to return, oldest first.",
        ),
        Param(
            "after",
            "query",
            {"type": "string", "pattern": ENTRY_ID_PATTERN},
            "Only entries after this id (the last id of the previous page).",
        ),
        Param(
            "group",
            "query",
            {"type": "string", "enum": ["error"]},
            "`error`: also group the page's dead letters by error signature (`groups`).",
        ),
    ),
    errors=(400, 404, 503),
    tags=("admin",),
)
async def list_dead_letters(request: Request, call: Call) -> Response:
    """Jobs that exhausted their attempts, failed fatally or were redelivered too often,
    with the reason and last error, oldest first; ``group=error`` adds the page's letters
    grouped by error signature (page with ``after`` and ``count`` up to 1000 to group
    more)."""
    queue = await call.state.require_queue(request.path_params["queue"])
    count = query_int(request, "count", 100, 1, _MAX_COUNT)
    after = request.query_params.get("after")
    if after is not None:
        check_entry_id(after, "after")
    letters = await call.app.dead_letters(queue, count=count, after=after or "-")
    views = [msgspec.convert(d, DeadLetterView, from_attributes=True) for d in letters]
    group = request.query_params.get("group")
    if group not in (None, "error"):
        raise ApiError(400, "invalid_parameter", "group takes one value: error")
    groups = group_by_error(letters) if group == "error" else None
    return json_response(DeadLetterListing(queue=queue, dead_letters=views, groups=groups))


@_counted(
    "POST",
    "/v1/queues/{queue}/dead-letters/{id}/replay",
    summary="Replay one dead letter",
    errors=(400, 404, 503),
)
async def replay_dead_letter(request: Request, call: Call) -> Response:
    """Enqueues the job again with fresh attempts and removes the dead letter."""
    return await _on_one_dead_letter(request, call, "replay")


@_counted(
    "POST",
    "/v1/queues/{queue}/dead-letters:replay",
    summary="Replay every dead letter",
    errors=(404, 503),
)
async def replay_all_dead_letters(request: Request, call: Call) -> Response:
    """Enqueues every dead job again with fresh attempts; ``count`` says how many."""
    return await _on_all_dead_letters(request, call, "replay")


@_counted(
    "DELETE",
    "/v1/queues/{queue}/dead-letters/{id}",
    summary="Purge one dead letter",
    errors=(400, 404, 503),
)
async def purge_dead_letter(request: Request, call: Call) -> Response:
    """Deletes one dead letter for good."""
    return await _on_one_dead_letter(request, call, "purge")


@_counted(
    "DELETE",
    "/v1/queues/{queue}/dead-letters",
    summary="Purge every dead letter",
    errors=(404, 503),
)
async def purge_dead_letters(request: Request, call: Call) -> Response:
    """Deletes every dead letter of the queue; ``count`` says how many."""
    return await _on_all_dead_letters(request, call, "purge")


def _action(call: Call, verb: Verb) -> Callable[[str, list[str] | None], Awaitable[int]]:
    return call.app.replay_dead if verb == "replay" else call.app.purge_dead


async def _on_all_dead_letters(request: Request, call: Call, verb: Verb) -> Response:
    queue = await call.state.require_queue(request.path_params["queue"])
    return json_response(CountResult(queue=queue, count=await _action(call, verb)(queue, None)))


async def _on_one_dead_letter(request: Request, call: Call, verb: Verb) -> Response:
    """Replays or purges the dead letter named in the path; 404 if there is none."""
    queue = await call.state.require_queue(request.path_params["queue"])
    entry = check_entry_id(request.path_params["id"])
    count = await _action(call, verb)(queue, [entry])
    if count == 0:
        raise ApiError(404, "dead_letter_not_found", f"no dead letter {entry!r} in {queue!r}")
    return json_response(CountResult(queue=queue, count=count))
