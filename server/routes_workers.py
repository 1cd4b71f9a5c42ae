"""``GET /v1/workers``: the workers serving this server's queues, and the ones that left.

What a worker records in Redis: its consumer name (``host:pid:random``) with the time of its
last heartbeat in each served queue's workers set (renewed with its leases), and, with its
roster every third of its heartbeat TTL, its load (``streamq._roster.Load``): concurrency,
slots in use, and the jobs it holds per queue. Each job's start, last lease renewal and
deliveries are read from the job's record, which also drops a job finished since the worker
last published (a job started since then shows at its next publication, seconds later).
"""

from __future__ import annotations

import time
import weakref

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from server.context import Call, ServerState, json_response
from server.routing import OperationTable

# streamq has no public reader for worker records yet; these name its keys and timing.
from streamq import _keys
from streamq._admin import WORKER_ALIVE_MS
from streamq._roster import Load, load_key

operation = OperationTable()
# Workers seen by this server that stopped heartbeating are listed as departed this long.
DEPARTED_SECONDS = 3600.0


class CurrentJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job the worker runs: its lane, when this delivery started (epoch seconds), seconds
    since then (``lease_age``) and since its lease was last renewed, and how often it was
    delivered."""

    queue: str
    id: str
    lane: str
    started_at: float | None
    lease_age: float | None
    since_renewal: float | None
    deliveries: int


class WorkerView(msgspec.Struct, frozen=True, kw_only=True):
    """One worker process. ``alive`` is false for a departed worker this server saw.
    ``concurrency`` (jobs at once, all its queues together) and ``in_use`` (slots taken) are
    null for a worker that does not publish its load."""

    name: str
    host: str
    pid: int | None
    queues: list[str]
    last_heartbeat: float
    alive: bool
    concurrency: int | None = None
    in_use: int | None = None
    current_jobs: list[CurrentJob] = []


class WorkerList(msgspec.Struct, frozen=True, kw_only=True):
    workers: list[WorkerView]


_seen: weakref.WeakKeyDictionary[ServerState, dict[str, WorkerView]] = weakref.WeakKeyDictionary()


def _host_pid(consumer: str) -> tuple[str, int | None]:
    host, _, rest = consumer.partition(":")
    pid = rest.partition(":")[0]
    return host, int(pid) if pid.isdigit() else None


async def read_workers(state: ServerState) -> list[WorkerView]:
    """Live workers from Redis, then the departed ones this server remembers: three round
    trips (heartbeats and Redis's clock, loads, the held jobs' records)."""
    app = state.app
    await app.connect()
    queues = await state.queue_names()
    # Heartbeats are stamped by the workers' clocks; job starts and renewals by Redis's.
    alive_since = time.time() * 1000 - WORKER_ALIVE_MS
    pipe = app.redis.pipeline(transaction=False)
    pipe.time()
    for queue in queues:
        pipe.zrangebyscore(_keys.workers(queue), alive_since, "+inf", withscores=True)
    clock, *replies = await pipe.execute(raise_on_error=False)
    now_ms = (
        int(clock[0]) * 1000 + int(clock[1]) // 1000
        if isinstance(clock, (list, tuple))
        else time.time() * 1000
    )
    beats: dict[str, float] = {}
    served: dict[str, list[str]] = {}
    for queue, members in zip(queues, replies, strict=True):
        for member, score in members if isinstance(members, list) else ():
            name = member.decode()
            beats[name] = max(beats.get(name, 0.0), float(score) / 1000)
            served.setdefault(name, []).append(queue)
    pairs = [(name, queue) for name in sorted(beats) for queue in served[name]]
    loads: dict[str, list[tuple[str, Load]]] = {}
    if pairs:
        pipe = app.redis.pipeline(transaction=False)
        for name, queue in pairs:
            pipe.get(load_key(queue, name))
        for (name, queue), raw in zip(pairs, await pipe.execute(raise_on_error=False), strict=True):
            load = Load.loads(raw) if isinstance(raw, (bytes, str)) else None
            if load is not None:
                loads.setdefault(name, []).append((queue, load))
    held = [
        (name, queue, job, lane)
        for name, found in loads.items()
        for queue, load in found
        for job, lane in load.jobs
    ]
    jobs: dict[str, list[CurrentJob]] = {}
    if held:
        pipe = app.redis.pipeline(transaction=False)
        for _, queue, job, _ in held:
            pipe.hmget(
                _keys.job(queue, job), "state", "consumer", "started_at", "renewed", "deliveries"
            )
        records = await pipe.execute(raise_on_error=False)
        for (name, queue, job, lane), record in zip(held, records, strict=True):
            fields = record if isinstance(record, list) else [None] * 5
            job_state, consumer, started, renewed, deliveries = (
                f.decode() if isinstance(f, bytes) else None for f in fields
            )
            if job_state != "active" or consumer != name:
                continue  # finished (or taken over) since the worker published
            jobs.setdefault(name, []).append(
                CurrentJob(
                    queue=queue,
                    id=job,
                    lane=lane,
                    started_at=int(started) / 1000 if started else None,
                    lease_age=_seconds_since(now_ms, started),
                    since_renewal=_seconds_since(now_ms, renewed),
                    deliveries=int(deliveries or 0),
                )
            )
    live: list[WorkerView] = []
    for name in sorted(beats):
        host, pid = _host_pid(name)
        live.append(
            WorkerView(
                name=name,
                host=host,
                pid=pid,
                queues=sorted(served[name]),
                last_heartbeat=beats[name],
                alive=True,
                concurrency=max((ld.concurrency for _, ld in loads.get(name, [])), default=None),
                in_use=max((ld.in_use for _, ld in loads.get(name, [])), default=None),
                current_jobs=sorted(jobs.get(name, []), key=lambda j: j.started_at or 0),
            )
        )
    seen = _seen.setdefault(state, {})
    for view in live:
        seen[view.name] = view
    departed = []
    now = time.time()
    for name, view in list(seen.items()):
        if name in beats:
            continue
        if now - view.last_heartbeat > DEPARTED_SECONDS:
            del seen[name]
            continue
        departed.append(msgspec.structs.replace(view, alive=False, in_use=None, current_jobs=[]))
    return live + sorted(departed, key=lambda v: -v.last_heartbeat)


@operation.get(
    "/v1/workers",
    summary="List workers",
    responses={200: WorkerList},
    errors=(503,),
    tags=("queues",),
)
async def list_workers(request: Request, call: Call) -> Response:
    """Every live worker of this server's queues: host, process id, the queues it serves,
    its concurrency (jobs at once, all its queues together) and the slots in use, the jobs it
    runs (each with its start, seconds since then and since its lease was renewed, as of the
    worker's last publication, every few seconds), and the time of its last heartbeat (epoch
    seconds). Workers that stopped heartbeating within the last hour, as seen by this server,
    follow with `alive: false`."""
    return json_response(WorkerList(workers=await read_workers(call.state)))


def _seconds_since(now_ms: float, ms: str | None) -> float | None:
    return round(max(now_ms - int(ms), 0) / 1000, 1) if ms else None
