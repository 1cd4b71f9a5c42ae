"""``GET /v1/workers``: the workers serving this server's queues, and the ones that left.

What a worker records in Redis today: its consumer name (``host:pid:random``) with the time
of its last heartbeat in each served queue's workers set (renewed with its leases), and the
stream entries it holds, as pending entries of the lane consumer groups. Host, pid, queues,
current jobs and the heartbeat are read from those; concurrency is not recorded by workers
yet and is reported as null.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import streamq
from server.context import Call, ServerState, json_response
from server.routing import OperationTable

# streamq has no public reader for worker records yet; these name its keys and timing.
from streamq import _keys
from streamq._admin import WORKER_ALIVE_MS

operation = OperationTable()
_PENDING_PER_LANE = 200
# Workers seen by this server that stopped heartbeating are listed as departed this long.
DEPARTED_SECONDS = 3600.0


class CurrentJob(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery the worker holds: the job, its lane, and seconds since its lease was last
    renewed (or since delivery) and how often it was delivered."""

    queue: str
    id: str
    lane: str
    entry: str
    since_renewal: float
    deliveries: int


class WorkerView(msgspec.Struct, frozen=True, kw_only=True):
    """One worker process. ``alive`` is false for a departed worker this server saw."""

    name: str
    host: str
    pid: int | None
    queues: list[str]
    last_heartbeat: float
    alive: bool
    concurrency: int | None = None
    current_jobs: list[CurrentJob] = []


class WorkerList(msgspec.Struct, frozen=True, kw_only=True):
    workers: list[WorkerView]


_seen: weakref.WeakKeyDictionary[ServerState, dict[str, WorkerView]] = weakref.WeakKeyDictionary()


def _host_pid(consumer: str) -> tuple[str, int | None]:
    host, _, rest = consumer.partition(":")
    pid = rest.partition(":")[0]
    return host, int(pid) if pid.isdigit() else None


async def read_workers(state: ServerState) -> list[WorkerView]:
    """Live workers from Redis, then the departed ones this server remembers."""
    app = state.app
    await app.connect()
    queues = await state.queue_names()
    now_ms = time.time() * 1000
    pipe = app.redis.pipeline(transaction=False)
    for queue in queues:
        pipe.zrangebyscore(_keys.workers(queue), now_ms - WORKER_ALIVE_MS, "+inf", withscores=True)
        for lane in streamq.LANES:
            pipe.xpending_range(_keys.lane(queue, lane), _keys.GROUP, "-", "+", _PENDING_PER_LANE)
    replies = await pipe.execute(raise_on_error=False)
    beats: dict[str, float] = {}
    served: dict[str, list[str]] = {}
    holding: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    step = 1 + len(streamq.LANES)
    for i, queue in enumerate(queues):
        members = replies[i * step]
        for member, score in members if isinstance(members, list) else ():
            name = member.decode()
            beats[name] = max(beats.get(name, 0.0), float(score) / 1000)
            served.setdefault(name, []).append(queue)
        for j, lane in enumerate(streamq.LANES):
            pending = replies[i * step + 1 + j]
            for entry in pending if isinstance(pending, list) else ():
                holding.setdefault(entry["consumer"].decode(), []).append((queue, lane, entry))
    # The job id of each held entry is in the entry itself.
    held = [(c, q, lane, e) for c, items in holding.items() if c in beats for q, lane, e in items]
    pipe = app.redis.pipeline(transaction=False)
    for _, queue, lane, entry in held:
        eid = entry["message_id"]
        pipe.xrange(_keys.lane(queue, lane), min=eid, max=eid, count=1)
    ranges = await pipe.execute(raise_on_error=False) if held else []
    jobs: dict[str, list[CurrentJob]] = {}
    for (consumer, queue, lane, entry), found in zip(held, ranges, strict=True):
        fields = found[0][1] if isinstance(found, list) and found else {}
        jobs.setdefault(consumer, []).append(
            CurrentJob(
                queue=queue,
                id=fields.get(b"id", b"").decode() or "?",
                lane=lane,
                entry=str(entry["message_id"].decode()),
                since_renewal=round(int(entry["time_since_delivered"]) / 1000, 1),
                deliveries=int(entry["times_delivered"]),
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
                current_jobs=jobs.get(name, []),
            )
        )
    seen = _seen.setdefault(state, {})
    now = time.time()
    for view in live:
        seen[view.name] = view
    departed = []
    for name, view in list(seen.items()):
        if name in beats:
            continue
        if now - view.last_heartbeat > DEPARTED_SECONDS:
            del seen[name]
            continue
        departed.append(msgspec.structs.replace(view, alive=False, current_jobs=[]))
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
    the jobs it holds now (with seconds since each lease was renewed), and the time of its
    last heartbeat (epoch seconds). Workers that stopped heartbeating within the last hour,
    as seen by this server, follow with `alive: false`. `concurrency` is null until workers
    record it."""
    return json_response(WorkerList(workers=await read_workers(call.state)))
