"""Listing jobs through the per-queue index the Lua scripts keep (nothing scans the keyspace).

The index (written by the same script as each state change, see ``lua/_prelude.lua``):

- ``ix:<state>``: the jobs in that state, scored by the ms of their last state change;
- ``ix:name:<name>``: the jobs of that name, scored by creation;
- ``ix:expiry``: finished records that expire by age, so their entries leave with them (swept
  a few at a time by the scripts that retire jobs; ``keep_last`` trimming removes them at once;
  a listing drops any id whose record is gone).

A listing reads one index newest first (all states at once when no state is asked for) and
checks the other filters against the job records. Its cursor is the last (score, id) returned:
paging neither skips nor repeats a job that stays put, and a job that changes state while the
listing runs leaves its old list and enters its new one at the top (it is listed in the new
state by any listing that starts after the change).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

import msgspec

from streamq import _keys
from streamq._admin import job_from_hash
from streamq._connection import broker_errors, hash_fields
from streamq._errors import InvalidJob
from streamq._scripts import IndexPage
from streamq._types import LANES, Job, JobState

if TYPE_CHECKING:
    from streamq._broker import Broker

STATES: tuple[str, ...] = get_args(JobState)
MAX_LIMIT = 500
# Index entries one script call examines at most (a filter matching few jobs pages on through
# several calls, each a fraction of a millisecond).
_BUDGET = 2000
_CURSOR = re.compile(r"(\d+):([A-Za-z0-9._:@-]{1,200})")
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
    name alone."""

    state: str | None = None
    name: str | None = None
    lane: str | None = None
    since: float | None = None
    until: float | None = None

    def check(self) -> JobQuery:
        """Returns itself; raises ``InvalidJob`` for an unknown state or lane."""
        if self.state is not None and self.state not in STATES:
            raise InvalidJob(f"unknown state {self.state!r}; states: {', '.join(STATES)}")
        if self.lane is not None and self.lane not in LANES:
            raise InvalidJob(f"unknown lane {self.lane!r}; lanes: {', '.join(LANES)}")
        return self


def encode_cursor(score: int | str, job_id: str) -> str:
    return f"{score}:{job_id}"


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Raises ``InvalidJob`` for a cursor this module did not make."""
    match = _CURSOR.fullmatch(cursor)
    if not match:
        raise InvalidJob(f"invalid cursor {cursor!r}: pass the 'next' of the previous page")
    return match.group(1), match.group(2)


def _start(query: JobQuery, cursor: str | None) -> tuple[str, str] | None:
    if cursor is not None:
        return decode_cursor(cursor)
    if query.until is not None:
        return str(int(query.until * 1000)), _TOP
    return None


async def _page_of(
    broker: Broker, queue: str, key: str, query: JobQuery, after: tuple[str, str] | None, limit: int
) -> IndexPage:
    floor = "-inf" if query.since is None else str(int(query.since * 1000))
    return await broker.scripts.list_index(
        queue,
        key,
        after=after,
        limit=limit,
        budget=_BUDGET,
        floor=floor,
        state=query.state or "",
        name=query.name or "",
        lane=query.lane or "",
    )


async def list_ids(
    broker: Broker, queue: str, query: JobQuery, *, limit: int, cursor: str | None
) -> tuple[list[str], str | None]:
    """Ids of one page (at most ``limit``, maybe fewer while more follow) and the next cursor."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidJob(f"limit must be 1-{MAX_LIMIT}, not {limit}")
    query.check()
    after = _start(query, cursor)
    await broker.connect()
    with broker_errors(f"listing jobs of {queue}"):
        if query.state is not None:
            page = await _page_of(
                broker, queue, _keys.index_state(queue, query.state), query, after, limit
            )
            nxt = encode_cursor(page.next_score, page.next_id) if page.next_score else None
            return page.ids, nxt
        if query.name is not None:
            page = await _page_of(
                broker, queue, _keys.index_name(queue, query.name), query, after, limit
            )
            nxt = encode_cursor(page.next_score, page.next_id) if page.next_score else None
            return page.ids, nxt
        pages = [
            await _page_of(broker, queue, _keys.index_state(queue, s), query, after, limit)
            for s in STATES
        ]
    return _merge(pages, limit)


def _merge(pages: Sequence[IndexPage], limit: int) -> tuple[list[str], str | None]:
    """Merges per-state pages into one, newest first. A page that stopped short of ``limit``
    with a cursor (its scan budget ran out) is known only down to that cursor, so the merged
    page stops there too; a full page needs no bound (the merged top ``limit`` lies above its
    last entry)."""
    bound: tuple[int, str] | None = None
    for p in pages:
        if p.next_score and len(p.ids) < limit:
            stop = (int(p.next_score), p.next_id)
            bound = stop if bound is None or stop > bound else bound
    items = sorted(
        ((score, i) for p in pages for score, i in zip(p.scores, p.ids, strict=True)),
        reverse=True,
    )
    if bound is not None:
        items = [it for it in items if it >= bound]
    taken = items[:limit]
    more = len(items) > limit or any(p.next_score for p in pages)
    if not more:
        return [i for _, i in taken], None
    last = taken[-1] if taken else bound
    assert last is not None  # nothing taken while more follows: some page stopped short
    return [i for _, i in taken], encode_cursor(*last)


async def read_jobs(broker: Broker, queue: str, ids: Sequence[str]) -> list[Job]:
    """The records of ``ids`` in one round trip, in order (those gone since are left out)."""
    if not ids:
        return []
    with broker_errors(f"reading jobs of {queue}"):
        pipe = broker.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(_keys.job(queue, job_id))
        replies = await pipe.execute()
    jobs = []
    for job_id, reply in zip(ids, replies, strict=True):
        h = hash_fields(reply)
        if h and b"spec" in h:
            jobs.append(job_from_hash(queue, job_id, h))
    return jobs


async def list_jobs(
    broker: Broker, queue: str, query: JobQuery, *, limit: int = 50, cursor: str | None = None
) -> JobPage:
    """One page of the jobs of ``queue`` matching ``query``, newest first. Raises
    ``InvalidJob`` (bad state, lane, limit or cursor), ``BrokerUnavailable``."""
    ids, nxt = await list_ids(broker, queue, query, limit=limit, cursor=cursor)
    return JobPage(jobs=await read_jobs(broker, queue, ids), next=nxt)


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
