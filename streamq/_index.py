"""Listing jobs without scanning the keyspace: each state is read where it is kept.

- ``queued``: the lane streams (an entry per waiting job), newest entry first;
- ``active``: the lanes' pending lists (as long as the workers' concurrency);
- ``scheduled`` and ``retrying``: the delayed set, by the time they are due;
- ``completed``, ``dead``, ``cancelled`` and ``waiting-children``: the job index the Lua
  scripts keep for these states only (``lua/_prelude.lua``: ``index_state``), one zset per
  state and job name scored by the ms the job got there. The hot path pays for it only as a
  job finishes; entries leave with their records (``keep_last`` trimming removes both at
  once; expired records are dropped from the head of their set as newer jobs arrive, and a
  listing drops any other stale id it meets).

A listing by ``tag`` reads the tag's set alone (``streamq._tags``), ordered by creation.

A listing reads these sources from a cursor and merges them, newest first; filters (name,
lane, time) are checked against the job records. The cursor is the last (ms, id) returned:
paging neither skips nor repeats a job that stays put; a job that changes state while the
listing runs leaves its old source and enters its new one at the top, so a listing of that
state started after the change shows it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

import msgspec

from streamq import _keys
from streamq._admin import job_from_hash
from streamq._connection import as_text, broker_errors, hash_fields
from streamq._errors import InvalidJob
from streamq._scripts import IndexPage
from streamq._tags import check_tags
from streamq._types import LANES, Job, JobState

if TYPE_CHECKING:
    from streamq._broker import Broker

STATES: tuple[str, ...] = get_args(JobState)
MAX_LIMIT = 500
MAX_EPOCH = 253_402_300_799  # 9999-12-31
# Index entries one script call examines at most (a filter matching few jobs pages on through
# several calls, each a fraction of a millisecond).
_BUDGET = 500
_CURSOR = re.compile(r"(\d+):([A-Za-z0-9._:@~!-]{1,200})")
# Sorts after every valid id: a cursor (t, _TOP) starts at score t inclusive.
_TOP = "~"


class JobPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of a listing: its jobs, newest first, and the cursor of the next page (None when
    the listing is done)."""

    jobs: list[Job]
    next: str | None


@dataclass(frozen=True, slots=True)
class JobQuery:
    """Which jobs of a queue to list; None matches anything. ``since``/``until`` (epoch
    seconds) bound the listing's time: the last state change, or creation when listing by
    name alone or by tag."""

    state: str | None = None
    name: str | None = None
    lane: str | None = None
    since: float | None = None
    until: float | None = None
    tag: str | None = None

    def check(self) -> JobQuery:
        """Returns itself; raises ``InvalidJob`` for an unknown state or lane."""
        if self.state is not None and self.state not in STATES:
            raise InvalidJob(f"unknown state {self.state!r}; states: {', '.join(STATES)}")
        if self.lane is not None and self.lane not in LANES:
            raise InvalidJob(f"unknown lane {self.lane!r}; lanes: {', '.join(LANES)}")
        if self.name is not None and not 1 <= len(self.name) <= 200:
            raise InvalidJob("a job name is 1-200 characters")
        if self.tag is not None:
            check_tags([self.tag])
        for bound in (self.since, self.until):
            if bound is not None and not 0 <= bound <= MAX_EPOCH:
                raise InvalidJob(f"since and until are epoch seconds in 0..{MAX_EPOCH}")
        return self


def encode_cursor(score: int | str, job_id: str) -> str:
    return f"{score}:{job_id}"


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Raises ``InvalidJob`` for a cursor this module did not make."""
    match = _CURSOR.fullmatch(cursor) if len(cursor) <= 260 else None
    if not match:
        raise InvalidJob(f"invalid cursor {cursor!r}: pass the 'next' of the previous page")
    return match.group(1), match.group(2)


def _start(query: JobQuery, cursor: str | None) -> tuple[str, str] | None:
    if cursor is not None:
        return decode_cursor(cursor)
    if query.until is not None:
        return str(int(query.until * 1000)), _TOP
    return None


_INDEXED = ("completed", "dead", "cancelled", "waiting-children")
_DELAYED = ("scheduled", "retrying")


async def _pages(
    broker: Broker, queue: str, query: JobQuery, after: tuple[str, str] | None, limit: int
) -> list[IndexPage]:
    """The pages of every source the query reads."""
    floor = "-inf" if query.since is None else str(int(query.since * 1000))
    states = [query.state] if query.state is not None else list(STATES)
    lanes = [query.lane] if query.lane is not None else list(LANES)
    scripts = broker.scripts
    pages: list[IndexPage] = []

    async def ordered(key: str, state: str) -> None:
        pages.append(
            await scripts.list_index(
                queue,
                key,
                after=after,
                limit=limit,
                budget=_BUDGET,
                floor=floor,
                state=state,
                name=query.name or "",
                lane=query.lane or "",
            )
        )

    if query.tag is not None:
        # A tag's set holds its jobs in every state: the filters apply to their records.
        await ordered(_keys.tag_index(queue, query.tag), query.state or "")
        return pages
    indexed = [s for s in states if s in _INDEXED]
    if indexed:
        if query.name is not None:
            names = [query.name]
        else:
            names = sorted(
                as_text(n) for n in await broker.redis.smembers(_keys.index_names(queue))
            )
        for state in indexed:
            for name in names:
                await ordered(_keys.index(queue, state, name), "")
    delayed = [s for s in states if s in _DELAYED]
    if delayed:
        await ordered(_keys.delayed(queue), delayed[0] if len(delayed) == 1 else "")
    for state in ("queued", "active"):
        if state in states:
            pages.extend(
                await scripts.list_lanes(
                    queue,
                    state=state,  # type: ignore[arg-type]
                    lanes=lanes,
                    after=after,
                    limit=limit,
                    budget=max(_BUDGET // len(lanes), 100),
                    floor=floor,
                    name=query.name or "",
                )
            )
    return pages


async def list_refs(
    broker: Broker, queues: Sequence[str], query: JobQuery, *, limit: int, cursor: str | None
) -> tuple[list[tuple[str, str]], str | None]:
    """(queue, id) of one page over ``queues`` (at most ``limit``, maybe fewer while more
    follow) and the next cursor."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidJob(f"limit must be 1-{MAX_LIMIT}, not {limit}")
    query.check()
    after = _start(query, cursor)
    await broker.connect()
    pages: list[tuple[str, IndexPage]] = []
    for queue in queues:
        with broker_errors(f"listing jobs of {queue}"):
            pages.extend((queue, p) for p in await _pages(broker, queue, query, after, limit))
    return _merge(pages, limit)


def _merge(
    pages: Sequence[tuple[str, IndexPage]], limit: int
) -> tuple[list[tuple[str, str]], str | None]:
    """Merges index pages into one, newest first. A page that stopped short of ``limit``
    with a cursor (its scan budget ran out) is known only down to that cursor, so the merged
    page stops there too; a full page needs no bound (the merged top ``limit`` lies above its
    last entry)."""
    bound: tuple[int, str] | None = None
    for _, p in pages:
        if p.next_score and len(p.ids) < limit:
            stop = (int(p.next_score), p.next_id)
            bound = stop if bound is None or stop > bound else bound
    items = sorted(
        ((score, i, q) for q, p in pages for score, i in zip(p.scores, p.ids, strict=True)),
        reverse=True,
    )
    if bound is not None:
        items = [it for it in items if (it[0], it[1]) >= bound]
    taken = items[:limit]
    refs = [(q, i) for _, i, q in taken]
    if not (len(items) > limit or any(p.next_score for _, p in pages)):
        return refs, None
    if taken:
        return refs, encode_cursor(taken[-1][0], taken[-1][1])
    assert bound is not None  # nothing taken while more follows: some page stopped short
    return refs, encode_cursor(*bound)


async def read_refs(broker: Broker, refs: Sequence[tuple[str, str]]) -> list[Job]:
    """The records of (queue, id) pairs in one round trip, in order (those gone since are
    left out)."""
    if not refs:
        return []
    with broker_errors("reading jobs"):
        pipe = broker.redis.pipeline(transaction=False)
        for queue, job_id in refs:
            pipe.hgetall(_keys.job(queue, job_id))
        replies = await pipe.execute()
    jobs = []
    for (queue, job_id), reply in zip(refs, replies, strict=True):
        h = hash_fields(reply)
        if h and b"spec" in h:
            jobs.append(job_from_hash(queue, job_id, h))
    return jobs


async def list_jobs(
    broker: Broker,
    queues: str | Sequence[str],
    query: JobQuery,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> JobPage:
    """One page of the jobs of ``queues`` (one name or several) matching ``query``, newest
    first. Raises ``InvalidJob`` (bad state, lane, limit or cursor), ``BrokerUnavailable``."""
    names = [queues] if isinstance(queues, str) else list(queues)
    refs, nxt = await list_refs(broker, names, query, limit=limit, cursor=cursor)
    return JobPage(jobs=await read_refs(broker, refs), next=nxt)


async def find_job(broker: Broker, queues: Sequence[str], job_id: str) -> Job | None:
    """The job ``job_id`` in whichever of ``queues`` holds it (one EXISTS per queue, in one
    round trip; the first queue in order wins should two hold the id)."""
    await broker.connect()
    with broker_errors(f"finding job {job_id}"):
        pipe = broker.redis.pipeline(transaction=False)
        for queue in queues:
            pipe.exists(_keys.job(queue, job_id))
        found = await pipe.execute()
    for queue, there in zip(queues, found, strict=True):
        if there:
            jobs = await read_refs(broker, [(queue, job_id)])
            if jobs:
                return jobs[0]
    return None


async def iter_jobs(
    broker: Broker, queue: str, query: JobQuery, *, page_size: int = 100
) -> AsyncIterator[Job]:
    """Every job matching ``query``, newest first, page by page."""
    cursor: str | None = None
    while True:
        page = await list_jobs(broker, queue, query, limit=page_size, cursor=cursor)
        for job in page.jobs:
            yield job
        if page.next is None:
            return
        cursor = page.next
