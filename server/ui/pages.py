"""The dashboard's pages, rendered on the server from what the JSON API returns.

Each page reads the same things its API routes read (queue stats, job records, dead letters,
schedules, workers) and renders them with Jinja2; the scripts under ``static/`` only follow
live events and call the API (through ``/ui/api``) for actions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import jinja2
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

import streamq
from server.auth import Principal
from server.context import check_job_id, server_state
from server.dead_groups import error_signature
from server.errors import ApiError
from server.routes_schedules import read_schedules
from server.routes_workers import WorkerView, read_workers
from server.ui.flows import find_parent, flow_tree
from server.ui.live import Overview, queue_summary, read_stats
from server.ui.session import (
    check_csrf,
    cleared_session_cookie,
    csrf_token,
    is_https,
    principal_for,
    session_cookie,
    set_csrf_cookie,
)

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("server.ui", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_pretty = msgspec.json.Encoder()
_DEAD_PAGE = 500


def _when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _json(value: Any) -> str:
    return msgspec.json.format(_pretty.encode(value), indent=2).decode()


_env.filters.update(when=_when, age=_age, pretty=_json)


def render(
    request: Request,
    template: str,
    principal: Principal,
    status: int = 200,
    **context: Any,
) -> Response:
    state = server_state(request)
    csrf = csrf_token(request)
    context.setdefault("can_act", principal.allows_some("admin"))
    body = _env.get_template(template).render(
        acts=lambda queue: principal.allows("admin", queue),
        sees=lambda queue: principal.allows("read", queue),
        visible=lambda queue: principal.allows("meta", queue),
        role=_role(principal),
        auth_enabled=state.auth.enabled,
        csrf=csrf,
        now=time.time(),
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(body, status)
    if request.cookies.get("streamq_csrf") != csrf:
        set_csrf_cookie(response.headers, csrf, is_https(request))
    return response


def _role(principal: Principal) -> str:
    """What the header says the signed-in token may do."""
    if principal.allows_some("admin"):
        return "admin" if principal.allows("admin") else "admin of some queues"
    return "read only" if principal.allows_some("read") else "counts only"


Page = Callable[[Request, Principal], Awaitable[Response]]


def page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """Checks who is looking first: no session -> the login form; not allowed -> 403."""

    async def endpoint(request: Request) -> Response:
        try:
            principal = principal_for(request)
        except ApiError as exc:
            if exc.status == 401:
                target = request.url.path
                return RedirectResponse(f"/ui/login?next={target}", 303)
            return _error_page(request, exc)
        if not principal.allows_some("meta"):
            return _error_page(
                request, ApiError(403, "insufficient_scope", "this token may read no queue")
            )
        try:
            return await handler(request, principal)
        except ApiError as exc:
            return _error_page(request, exc, principal)

    endpoint.__name__ = handler.__name__
    return endpoint


def _error_page(request: Request, exc: ApiError, principal: Principal | None = None) -> Response:
    viewer = principal or Principal(key="nobody", name="nobody", grants=())
    return render(
        request, "error.html", viewer, exc.status, code=exc.detail.code, message=exc.detail.message
    )


def _visible(principal: Principal, queue: str) -> None:
    """ApiError 403 unless the token may see ``queue`` (``meta`` at least)."""
    if not principal.allows("meta", queue):
        raise ApiError(
            403, "insufficient_scope", f"this token lacks the 'read' scope for queue {queue!r}"
        )


def _overview_of(request: Request) -> Overview:
    overview = getattr(request.app.state, "ui_overview", None)
    assert isinstance(overview, Overview), "the dashboard was not installed by server.ui.install"
    return overview


@page
async def overview_page(request: Request, principal: Principal) -> Response:
    queues = [
        q for q in await _overview_of(request).snapshot() if principal.allows("meta", q["name"])
    ]
    return render(request, "overview.html", principal, queues=queues)


@page
async def queue_page(request: Request, principal: Principal) -> Response:
    state = server_state(request)
    _visible(principal, request.path_params["queue"])  # 403 first, as the API answers
    queue = await state.require_queue(request.path_params["queue"])
    from streamq._ratelimit import get_rate_limit  # no public reader yet

    stats, rates, limit, schedules, workers = await asyncio.gather(
        read_stats(state, queue),
        _overview_of(request).rates_of(queue),
        get_rate_limit(state.app.broker, queue),
        read_schedules(state.app, queue),
        read_workers(state),
    )
    return render(
        request,
        "queue.html",
        principal,
        q=queue_summary(stats, rates),
        rate_limit=limit,
        schedules=schedules,
        workers=[w for w in _visible_workers(principal, workers) if queue in w.queues],
        names=sorted(t.name for t in state.app.tasks.values() if t.queue == queue),
        states=list(_STATES),
        lanes=list(streamq.LANES),
        filters={k: request.query_params.get(k, "") for k in _FILTERS},
        can_act=principal.allows("admin", queue),
    )


_STATES = (
    "scheduled",
    "queued",
    "active",
    "waiting-children",
    "retrying",
    "completed",
    "dead",
    "cancelled",
)
_FILTERS = ("state", "name", "lane", "tag", "since", "until", "id")


@page
async def job_page(request: Request, principal: Principal) -> Response:
    state = server_state(request)
    _visible(principal, request.path_params["queue"])  # 403 first, as the API answers
    queue = await state.require_queue(request.path_params["queue"])
    job_id = check_job_id(request.path_params["id"])
    rendered_at = time.time()  # before the read: events after it are news to the page
    job = await state.app.job(queue, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id!r} in queue {queue!r}")
    flow = await state.app.flow_state(queue, job_id)
    tree, left_out = (None, 0)
    if flow is not None and flow.jobs > 1:
        tree, left_out = await flow_tree(state.app, queue, job_id)
    else:
        flow = None
    parent_queue = None
    if job.parent:
        shown = [q for q in await state.queue_names() if principal.allows("meta", q)]
        parent_queue = await find_parent(state.app, queue, job.parent, shown)
    # A job's log is as private as its payload: a meta token does not see it.
    log = await state.app.job_logs(queue, job_id) if principal.allows("read", queue) else None
    return render(
        request,
        "job.html",
        principal,
        job=job,
        log=log,
        lanes=streamq.LANES,
        flow=flow,
        tree=tree,
        left_out=left_out,
        parent_queue=parent_queue,
        task_names=[t.name for t in state.app.tasks.values() if t.queue == queue],
        can_act=principal.allows("admin", queue),
        sees_payload=principal.allows("read", queue),
        rendered_at=rendered_at,
    )


@page
async def dead_letters_page(request: Request, principal: Principal) -> Response:
    state = server_state(request)
    queues = [q for q in await state.queue_names() if principal.allows("meta", q)]
    lists = await asyncio.gather(*(state.app.dead_letters(q, count=_DEAD_PAGE) for q in queues))
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for queue, letters in zip(queues, lists, strict=True):
        for d in letters:
            # A meta token sees no errors: its groups are by reason alone.
            error = d.error if principal.allows("read", queue) else None
            key = (queue, error_signature(d.reason, error))
            group = groups.setdefault(
                key, {"queue": queue, "signature": key[1], "letters": [], "names": set()}
            )
            group["letters"].append(d)
            group["names"].add(d.name)
    ordered = sorted(groups.values(), key=lambda g: (-len(g["letters"]), g["queue"]))
    totals = {q: len(ls) for q, ls in zip(queues, lists, strict=True) if ls}
    return render(
        request,
        "dead.html",
        principal,
        groups=ordered,
        totals=totals,
        page_size=_DEAD_PAGE,
        can_act=any(principal.allows("admin", q) for q in queues),
    )


@page
async def schedules_page(request: Request, principal: Principal) -> Response:
    schedules = [
        s
        for s in await read_schedules(server_state(request).app)
        if principal.allows("meta", s.queue)
    ]
    return render(
        request,
        "schedules.html",
        principal,
        schedules=schedules,
        can_act=any(principal.allows("admin", s.queue) for s in schedules),
    )


@page
async def workers_page(request: Request, principal: Principal) -> Response:
    workers = _visible_workers(principal, await read_workers(server_state(request)))
    return render(request, "workers.html", principal, workers=workers)


def _visible_workers(principal: Principal, workers: list[WorkerView]) -> list[WorkerView]:
    """The workers serving a queue the token may see, showing only those queues and their
    current jobs (a worker of hidden queues alone is not listed)."""
    shown = []
    for w in workers:
        queues = [q for q in w.queues if principal.allows("meta", q)]
        if queues:
            jobs = [j for j in w.current_jobs if principal.allows("meta", j.queue)]
            shown.append(msgspec.structs.replace(w, queues=queues, current_jobs=jobs))
    return shown


async def login_page(request: Request) -> Response:
    state = server_state(request)
    viewer = Principal(key="nobody", name="nobody", grants=())
    message = ""
    status = 200
    next_url = _safe_next(request.query_params.get("next"))
    if not state.auth.enabled:
        return RedirectResponse(next_url, 303)  # nothing to sign in with: loopback only
    if request.method == "POST":
        form = await _form(request)
        next_url = _safe_next(str(form.get("next") or ""))
        try:
            check_csrf(request, str(form.get("csrf") or ""))
            token = str(form.get("token") or "").strip()
            if not token and state.auth.enabled:
                raise ApiError(401, "unauthorized", "enter an API token")
            principal_for(request, token)
        except ApiError as exc:
            message, status = exc.detail.message, exc.status
        else:
            response = RedirectResponse(next_url, 303)
            if token:
                response.headers.append("set-cookie", session_cookie(token, is_https(request)))
            return response
    return render(request, "login.html", viewer, status, message=message, next_url=next_url)


async def logout(request: Request) -> Response:
    form = await _form(request)
    try:
        check_csrf(request, str(form.get("csrf") or ""))
    except ApiError as exc:
        return _error_page(request, exc)
    response = RedirectResponse("/ui/login", 303)
    response.headers.append("set-cookie", cleared_session_cookie())
    return response


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (login, logout); larger bodies are refused."""
    body = await request.body()
    if len(body) > 16_384:
        raise ApiError(413, "body_too_large", "the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _safe_next(target: str | None) -> str:
    """Only a path of this dashboard: never another site after signing in."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"
