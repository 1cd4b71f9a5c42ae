"""Lua scripts: one file per script in ``streamq/lua``, registered once per client, and one
typed method per script that builds its KEYS and ARGV in one place.

Each script file starts with its shebang line; the shared prelude (key layout, event emission,
lease and job-record helpers) is inserted after it. redis-py's Script objects run EVALSHA and
fall back to SCRIPT LOAD when the server has not seen the script (after a restart, say).

Every script's ARGV starts with the queue's key prefix, the consumer group and the events
stream's cap (the prelude reads them); the methods below add the rest by name. Every queue
script is safe to re-send: its call names one more key, where its reply is kept for 30 s,
so a call the client sends again after a lost reply answers that first reply and changes
nothing. Outcomes travel
to Lua as single letters (cheap on the hot path) and are translated here, so nothing outside
this module sees them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from streamq import _keys

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

    from streamq._connection import RedisClient

Outcome = Literal["completed", "retry", "dead", "cancelled", "hand_back"]
"""What a worker reports for a delivery: ``hand_back`` puts it back on its lane (shutdown, or a
worker without its handler)."""
FinalOutcome = Literal["completed", "dead", "cancelled"]
"""The outcomes that end a job (what a flow parent hears of its children)."""
FINAL_OUTCOMES: Final[frozenset[str]] = frozenset(("completed", "dead", "cancelled"))
JobAction = Literal["retry", "promote", "remove", "drain"]
"""What operate-2 does to a job (see there for the states each applies to)."""
ChildDecision = Literal["none", "waiting", "decided", "queued", "dead"]

_LETTER: Final[dict[Outcome, str]] = {
    "completed": "c",
    "retry": "r",
    "dead": "d",
    "cancelled": "x",
    "hand_back": "h",
}

_NAMES = (
    "enqueue-3",
    "fetch-4",
    "settle-2",
    "reclaim-3",
    "renew-2",
    "progress-1",
    "cancel-3",
    "pause-2",
    "replay-2",
    "purge-2",
    "lock-2",
    "relock-1",
    "unlock-1",
    "admit-2",
    "refund-1",
    "flow-3",
    "childdone-2",
    "tick-2",
    "gate-1",
    "list-1",
    "lanes-1",
    "operate-2",
    "rates-1",
)


@cache
def source(name: str) -> str:
    """The full text of script ``name`` (e.g. ``"fetch-4"``), prelude included."""
    lua = resources.files("streamq") / "lua"
    body = (lua / f"{name}.lua").read_text()
    prelude = (lua / "_prelude.lua").read_text()
    shebang, _, rest = body.partition("\n")
    if not shebang.startswith("#!lua"):
        raise ValueError(f"script {name} must start with a #!lua line")
    # The body runs inside run_once (see the prelude): a call that passes one key more than the
    # script's own names where its reply is kept, so a re-sent call answers the first reply.
    own_keys = int(name.rsplit("-", 1)[1])
    return (
        f"{shebang}\n{prelude}\nlocal function body()\n{rest}\nend\n"
        f"return run_once(KEYS[{own_keys + 1}], body)\n"
    )


@dataclass(frozen=True)
class EventCounts:
    """What ``rates-1`` counted: the window's end, how many entries it examined, the ms of
    the last one examined (0: none), and the count per type asked for."""

    end_ms: int
    examined: int
    last_ms: int
    counts: dict[str, int]


def flow_member(job: str, queue: str) -> str:
    """A flow child as its parent's bookkeeping stores it (job ids never contain spaces)."""
    return f"{job} {queue}"


def split_member(member: bytes | str) -> tuple[str, str]:
    text = member.decode() if isinstance(member, bytes) else member
    job, _, queue = text.partition(" ")
    return job, queue


@dataclass(slots=True)
class Retention:
    """How long and how much the broker keeps (one object shared by the broker and its scripts,
    so a change applies to the next call)."""

    result_ttl: float = 3600.0
    dead_ttl: float = 7 * 86400.0
    keep_last: int = 0
    events_maxlen: int = 10_000
    dead_maxlen: int = 100_000

    @property
    def dead_ttl_ms(self) -> int:
        return int(self.dead_ttl * 1000)


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job record to write (enqueue, or a flow parent)."""

    id: str
    name: str
    lane: str
    spec: bytes
    delay_ms: int
    max_attempts: int
    lease_ms: int
    max_deliveries: int
    dedup_ms: int  # -1: deduplicated for as long as the record lives
    parent: str  # '' = none


def new_job_args(job: NewJob) -> list[Any]:
    """The 10 ARGV values enqueue-3 (and flow-3, for its parent) take per job."""
    return [
        job.id,
        job.name,
        job.lane,
        job.spec,
        job.delay_ms,
        job.max_attempts,
        job.lease_ms,
        job.max_deliveries,
        job.dedup_ms,
        job.parent,
    ]


@dataclass(frozen=True, slots=True)
class Enqueued:
    state: str
    deduplicated: bool


@dataclass(frozen=True, slots=True)
class Fetched:
    """One delivery handed out by fetch-4."""

    entry_id: str
    lane: str
    job_id: str
    spec: bytes
    attempt: int
    fence: int
    deliveries: int
    lost: int


@dataclass(frozen=True, slots=True)
class FetchReply:
    paused: bool
    jobs: list[Fetched]
    next_due_ms: int  # -1: nothing delayed
    last_ids: list[str]  # per lane in the order asked, when no job was delivered
    suspects_waiting: int = 0  # suspects in quarantine, waiting for a worker with nothing to do


@dataclass(frozen=True, slots=True)
class Settlement:
    """One delivery's outcome. ``data`` is the encoded result (completed) or the error (retry,
    dead); ``ttl_ms`` how long the finished record lives; ``delay_ms`` the retry's delay. A
    ``hand_back`` with a ``reason`` names the consumer that leaves the job to other workers for
    ``delay_ms`` (it has no handler for it)."""

    outcome: Outcome
    job_id: str
    lane: str
    entry_id: str
    fence: int
    data: bytes | str = b""
    ttl_ms: int = 0
    delay_ms: int = 0
    count_attempt: bool = True
    reason: str = ""

    def args(self) -> list[Any]:
        if self.outcome == "retry":
            number, text = self.delay_ms, "1" if self.count_attempt else "0"
        elif self.outcome == "hand_back":
            number, text = self.delay_ms, self.reason
        else:
            number, text = self.ttl_ms, self.reason
        return [
            _LETTER[self.outcome],
            self.job_id,
            self.lane,
            self.entry_id,
            self.fence,
            self.data,
            number,
            text,
        ]


@dataclass(frozen=True, slots=True)
class Lease:
    """A delivery a worker holds: renewed, or reported lost, by renew-2."""

    job_id: str
    lane: str
    entry_id: str
    fence: int


@dataclass(frozen=True, slots=True)
class Renewed:
    lost: list[str]
    cancel_requested: list[str]


@dataclass(frozen=True, slots=True)
class Reclaimed:
    cursors: dict[str, str]
    requeued: int
    dead: int
    cancelled: int


@dataclass(frozen=True, slots=True)
class IndexPage:
    """Job ids from one index, newest first, and where the next page starts (``next_score``
    empty: the index holds nothing further)."""

    ids: list[str]
    scores: list[int]
    next_score: str
    next_id: str


@dataclass(frozen=True, slots=True)
class ChildDone:
    decision: ChildDecision
    finished: int = 0
    total: int = 0
    grandparent: str = ""
    grandparent_queue: str = ""


def task_limits(limits: Mapping[str, tuple[float, int]]) -> str:
    """Per task name, (lease seconds, max_deliveries) as fetch-4 takes them."""
    return json.dumps(
        {
            name: [max(int(lease * 1000), 1), deliveries]
            for name, (lease, deliveries) in limits.items()
        }
    )


def new_token() -> str:
    """A token naming one logical script call (its re-sends included)."""
    return secrets.token_hex(8)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Scripts:
    """The scripts registered on one client, one typed method each."""

    def __init__(self, client: RedisClient, retention: Retention) -> None:
        self.retention = retention
        self._registered: dict[str, AsyncScript] = {
            name.split("-")[0]: client.register_script(source(name)) for name in _NAMES
        }

    async def _run(
        self, verb: str, queue: str, keys: Sequence[str], *args: Any, token: str | None = None
    ) -> Any:
        """Runs a queue's script once per ``token`` (a fresh one when None): the client re-sends
        a call whose reply was lost with the same arguments, and the script answers that
        re-send with its first reply (see ``run_once`` in the prelude). A caller that retries
        by itself passes the same token again (see :func:`new_token`)."""
        head: list[Any] = [_keys.prefix(queue), _keys.GROUP, self.retention.events_maxlen]
        reply_key = _keys.custom(queue, "reply", token or new_token())
        return await self._registered[verb](keys=[*keys, reply_key], args=[*head, *args])

    async def _run_bare(self, verb: str, keys: Sequence[str], *args: Any) -> Any:
        """Scripts on keys of their own (locks, limits, groups): the prelude's head is unused."""
        return await self._registered[verb](keys=list(keys), args=[keys[0], "", 0, *args])

    # -- jobs ------------------------------------------------------------------------------------

    async def enqueue(
        self, queue: str, jobs: Sequence[NewJob], *, token: str | None = None
    ) -> list[Enqueued]:
        keys = [_keys.events(queue), _keys.stats(queue), _keys.delayed(queue)]
        args = [a for job in jobs for a in new_job_args(job)]
        replies = await self._run("enqueue", queue, keys, *args, token=token)
        return [Enqueued(_text(state), bool(dup)) for state, dup in replies]

    async def fetch(
        self,
        queue: str,
        *,
        consumer: str,
        count: int,
        promote_limit: int,
        may_take_suspect: bool,
        lanes: Sequence[str],
        task_limits: str = "{}",
        token: str | None = None,
    ) -> FetchReply:
        """Delivers up to ``count`` jobs. ``task_limits`` (see :func:`task_limits`) are the
        worker's own lease and max_deliveries per task name: they replace the stored ones for
        the jobs delivered, so the worker's task definition decides, not the producer's."""
        keys = [_keys.events(queue), _keys.stats(queue), _keys.delayed(queue), _keys.paused(queue)]
        paused, jobs, next_due, last_ids, suspects = await self._run(
            "fetch",
            queue,
            keys,
            consumer,
            count,
            promote_limit,
            "1" if may_take_suspect else "0",
            task_limits,
            *lanes,
            token=token,
        )
        return FetchReply(
            paused=bool(paused),
            jobs=[
                Fetched(
                    entry_id=_text(eid),
                    lane=_text(lane),
                    job_id=_text(job_id),
                    spec=bytes(spec),
                    attempt=int(attempt),
                    fence=int(fence),
                    deliveries=int(deliveries),
                    lost=int(lost),
                )
                for eid, lane, job_id, spec, attempt, fence, deliveries, lost in jobs
            ],
            next_due_ms=int(next_due),
            last_ids=[_text(i) for i in last_ids],
            suspects_waiting=int(suspects),
        )

    async def settle(
        self, queue: str, settlements: Sequence[Settlement], *, token: str | None = None
    ) -> list[bool]:
        """Writes outcomes; per settlement, False if it was fenced out (its lease was taken)."""
        r = self.retention
        args = [a for s in settlements for a in s.args()]
        applied = await self._run(
            "settle",
            queue,
            [_keys.events(queue), _keys.stats(queue)],
            r.dead_maxlen,
            r.keep_last,
            *args,
            token=token,
        )
        return [bool(ok) for ok in applied]

    async def reclaim(
        self, queue: str, *, consumer: str, min_idle_ms: int, count: int, cursors: Mapping[str, str]
    ) -> Reclaimed:
        r = self.retention
        lanes = list(cursors)
        reply = await self._run(
            "reclaim",
            queue,
            [_keys.events(queue), _keys.stats(queue), _keys.dead(queue)],
            consumer,
            min_idle_ms,
            count,
            r.dead_maxlen,
            r.dead_ttl_ms,
            r.keep_last,
            *(a for lane in lanes for a in (lane, cursors[lane])),
        )
        next_cursors, requeued, dead, cancelled = reply
        return Reclaimed(
            cursors={lane: _text(c) for lane, c in zip(lanes, next_cursors, strict=True)},
            requeued=int(requeued),
            dead=int(dead),
            cancelled=int(cancelled),
        )

    async def renew(
        self, queue: str, *, consumer: str, heartbeat_ms: int, leases: Sequence[Lease]
    ) -> Renewed:
        lost, cancel = await self._run(
            "renew",
            queue,
            [_keys.events(queue), _keys.workers(queue)],
            consumer,
            heartbeat_ms,
            *(a for x in leases for a in (x.job_id, x.lane, x.entry_id, x.fence)),
        )
        return Renewed(lost=[_text(i) for i in lost], cancel_requested=[_text(i) for i in cancel])

    async def progress(self, queue: str, lease: Lease, *, percent: float, message: str) -> bool:
        """Records progress; False when the delivery no longer holds the job's lease."""
        applied = await self._run(
            "progress",
            queue,
            [_keys.events(queue)],
            lease.job_id,
            lease.fence,
            lease.entry_id,
            repr(float(percent)),
            message,
        )
        return bool(applied)

    async def cancel(self, queue: str, job_id: str) -> str | None:
        """The job's state after the call (``"cancelling"`` for an active one); None if there
        is no such job."""
        r = self.retention
        state = await self._run(
            "cancel",
            queue,
            [_keys.events(queue), _keys.stats(queue), _keys.delayed(queue)],
            job_id,
            int(r.result_ttl * 1000),
            r.keep_last,
        )
        return _text(state) if state else None

    async def pause(self, queue: str, paused: bool) -> None:
        await self._run(
            "pause", queue, [_keys.events(queue), _keys.paused(queue)], "1" if paused else "0"
        )

    async def replay(self, queue: str, ids: Sequence[str] | None, *, limit: int) -> tuple[int, int]:
        """Replays dead letters (``ids``, or the oldest ``limit`` when None); returns
        (entries processed, jobs replayed)."""
        processed, replayed = await self._dead_letters("replay", queue, ids, limit)
        return int(processed), int(replayed)

    async def purge(self, queue: str, ids: Sequence[str] | None, *, limit: int) -> int:
        """Purges dead letters (``ids``, or the oldest ``limit`` when None); returns how many."""
        return int(await self._dead_letters("purge", queue, ids, limit))

    async def _dead_letters(
        self, verb: str, queue: str, ids: Sequence[str] | None, limit: int
    ) -> Any:
        mode = ["all"] if ids is None else ["ids", *ids]
        return await self._run(verb, queue, [_keys.events(queue), _keys.dead(queue)], limit, *mode)

    async def list_index(
        self,
        queue: str,
        index_key: str,
        *,
        after: tuple[str, str] | None,
        limit: int,
        budget: int,
        floor: str,
        state: str,
        name: str,
        lane: str,
    ) -> IndexPage:
        """A page of the index at ``index_key`` after the cursor ``after`` (score, id),
        examining at most ``budget`` entries; filters of ``''`` match anything."""
        score, last = after or ("", "")
        ids, scores, next_score, next_id = await self._run(
            "list", queue, [index_key], score, last, limit, budget, floor, state, name, lane
        )
        return IndexPage(
            [_text(i) for i in ids], [int(s) for s in scores], _text(next_score), _text(next_id)
        )

    async def operate(self, queue: str, action: JobAction, ids: Sequence[str]) -> list[str]:
        """Per id: ``"ok"``, the state that refused ``action``, or ``"missing"``."""
        keys = [_keys.events(queue), _keys.delayed(queue)]
        return [_text(r) for r in await self._run("operate", queue, keys, action, *ids)]

    async def list_lanes(
        self,
        queue: str,
        *,
        state: Literal["queued", "active"],
        lanes: Sequence[str],
        after: tuple[str, str] | None,
        limit: int,
        budget: int,
        floor: str,
        name: str,
    ) -> list[IndexPage]:
        """Per lane, a page of its ``queued`` (read off the stream) or ``active`` (off the
        pending list) jobs after the cursor ``after`` (ms, id), examining at most ``budget``
        entries per lane."""
        score, last = after or ("", "")
        replies = await self._run(
            "lanes",
            queue,
            [_keys.lane(queue, lanes[0])],
            score,
            last,
            limit,
            budget,
            floor,
            state,
            name,
            *lanes,
        )
        return [
            IndexPage([_text(i) for i in ids], [int(s) for s in scores], _text(ns), _text(ni))
            for ids, scores, ns, ni in replies
        ]

    # -- flows -----------------------------------------------------------------------------------

    async def flow(
        self,
        queue: str,
        parent: NewJob,
        *,
        policy: str,
        threshold: float,
        parent_queue: str,
        children: Sequence[tuple[str, str]],
    ) -> Enqueued:
        """Writes a flow parent waiting for ``children`` (id, queue) once per parent id."""
        state, dup = await self._run(
            "flow",
            queue,
            [_keys.events(queue), _keys.stats(queue), _keys.flows_waiting(queue)],
            *new_job_args(parent),
            policy,
            repr(float(threshold)),
            parent_queue,
            *(flow_member(job, q) for job, q in children),
        )
        return Enqueued(_text(state), bool(dup))

    async def childdone(
        self, parent_queue: str, parent: str, child: str, child_queue: str, outcome: FinalOutcome
    ) -> ChildDone:
        """Records a child's final outcome at its parent; once every child is in, decides the
        parent by its policy (idempotent)."""
        r = self.retention
        reply = await self._run(
            "childdone",
            parent_queue,
            [_keys.events(parent_queue), _keys.stats(parent_queue)],
            parent,
            flow_member(child, child_queue),
            _LETTER[outcome],
            r.dead_maxlen,
            r.dead_ttl_ms,
            r.keep_last,
            r.dead_ttl_ms,
            _keys.flows_waiting(parent_queue),
        )
        decision = cast("ChildDecision", _text(reply[0]))
        if decision == "waiting":
            return ChildDone(decision, finished=int(reply[1]), total=int(reply[2]))
        if decision == "dead":
            return ChildDone(
                decision, grandparent=_text(reply[1]), grandparent_queue=_text(reply[2])
            )
        return ChildDone(decision)

    # -- coordination ----------------------------------------------------------------------------

    async def tick(self, queue: str, schedule_id: str, tick_ms: int, job_id: str | None) -> bool:
        """Moves a schedule's newest fired tick forward (recording the job it fired); False if
        another scheduler was there first."""
        keys = [_keys.schedules_last(queue), _keys.schedules_jobs(queue)]
        return bool(await self._run("tick", queue, keys, schedule_id, tick_ms, job_id or ""))

    async def gate(
        self, queue: str, group: str, job_id: str, *, limit: int, lease_ms: int
    ) -> tuple[bool, int]:
        """Takes (or renews) one of ``limit`` slots of ``group``: (held, ms until one frees)."""
        held, wait_ms = await self._run(
            "gate", queue, [_keys.group(queue, group)], job_id, limit, lease_ms
        )
        return bool(held), int(wait_ms)

    async def admit(self, queue: str, wanted: int) -> tuple[int, int]:
        """Admits up to ``wanted`` starts under the queue's rate limit: (admitted, ms until the
        next start may be admitted)."""
        keys = [_keys.ratelimit(queue), _keys.ratelimit_log(queue)]
        admitted, wait_ms = await self._run("admit", queue, keys, wanted)
        return int(admitted), int(wait_ms)

    async def refund(self, queue: str, unused: int) -> None:
        await self._run("refund", queue, [_keys.ratelimit_log(queue)], unused)

    async def lock(self, name: str, token: str, ttl_ms: int) -> tuple[int, int]:
        """Takes lock ``name``: (fence, 0) when taken, (0, ms left on the holder's lease)."""
        keys = [_keys.lock(name), _keys.lock_fence(name)]
        fence, left_ms = await self._run_bare("lock", keys, token, ttl_ms)
        return int(fence), int(left_ms)

    async def relock(self, name: str, token: str, ttl_ms: int) -> bool:
        return bool(await self._run_bare("relock", [_keys.lock(name)], token, ttl_ms))

    async def unlock(self, name: str, token: str) -> bool:
        return bool(await self._run_bare("unlock", [_keys.lock(name)], token))

    async def count_events(
        self, queue: str, *, end_ms: int | None, window_ms: int, sample: int, types: Sequence[str]
    ) -> EventCounts:
        """Events of ``types`` in ``queue``'s stream over ``window_ms`` before ``end_ms``
        (None: Redis's now), at most ``sample`` examined, newest first. Read-only."""
        reply = await self._run_bare(
            "rates",
            [_keys.events(queue)],
            "" if end_ms is None else end_ms,
            window_ms,
            sample,
            *types,
        )
        return EventCounts(
            end_ms=int(reply[0]),
            examined=int(reply[1]),
            last_ms=int(reply[2]),
            counts={kind: int(n) for kind, n in zip(types, reply[3:], strict=True)},
        )
