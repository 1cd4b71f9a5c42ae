"""The scripts of job logs, priority changes, queue deletion and tags: one typed method each, as in
``streamq._scripts`` (same prelude, same re-send safety), registered on first use beside the
hot path's scripts rather than among them, so the hot path's registry stays as it is."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from streamq import _keys
from streamq._scripts import new_token, source

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

    from streamq._broker import Broker
    from streamq._connection import RedisClient

_NAMES = ("log-2", "reprioritize-2", "dropqueue-2", "tag-1")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class OpScripts:
    """The scripts registered on one client."""

    def __init__(self, broker: Broker) -> None:
        client = broker.redis
        self._broker = broker
        self._registered: dict[str, AsyncScript] = {
            name.split("-")[0]: client.register_script(source(name)) for name in _NAMES
        }

    async def _run(self, verb: str, queue: str, keys: Sequence[str], *args: Any) -> Any:
        head: list[Any] = [
            _keys.prefix(queue),
            _keys.GROUP,
            self._broker.retention.events_maxlen,
        ]
        reply_key = _keys.custom(queue, "reply", new_token())
        return await self._registered[verb](keys=[*keys, reply_key], args=[*head, *args])

    async def log(
        self,
        queue: str,
        job_id: str,
        *,
        fence: int,
        entry_id: str,
        line: bytes,
        message: str,
        max_lines: int,
        max_bytes: int,
    ) -> bool:
        """Appends ``line`` to the job's log; False when the delivery no longer holds the
        job's lease."""
        keys = [_keys.events(queue), _keys.job_log(queue, job_id)]
        applied = await self._run(
            "log", queue, keys, job_id, fence, entry_id, line, message, max_lines, max_bytes
        )
        return bool(applied)

    async def reprioritize(
        self, queue: str, job_id: str, lane: str, *, read: bytes, replaced: bytes
    ) -> str:
        """Moves a waiting job to ``lane`` if its spec is still ``read`` (``replaced`` is the
        spec with the new lane): ``"ok"``, ``"same"`` (already there), ``"changed"`` (the
        spec is no longer ``read``), the state that refused it, or ``"missing"``."""
        keys = [_keys.events(queue), _keys.lane(queue, lane)]
        return _text(await self._run("reprioritize", queue, keys, job_id, lane, read, replaced))

    async def drop_batch(
        self, queue: str, source: str, *, kind: Literal["zset", "stream"], count: int
    ) -> tuple[int, int]:
        """Takes up to ``count`` jobs off ``source`` and deletes their keys: (items taken,
        job records deleted)."""
        taken, removed = await self._run(
            "dropqueue", queue, [_keys.events(queue), source], kind, count
        )
        return int(taken), int(removed)

    async def tag(self, queue: str, jobs: Sequence[tuple[str, Sequence[str]]]) -> int:
        """Tags jobs (id, tags) whose records exist; returns how many."""
        args = [a for job_id, tags in jobs for a in (job_id, len(tags), *tags)]
        return int(await self._run("tag", queue, [_keys.events(queue)], *args))


_by_client: weakref.WeakKeyDictionary[RedisClient, OpScripts] = weakref.WeakKeyDictionary()


def op_scripts(broker: Broker) -> OpScripts:
    """The scripts of ``broker``'s current client (after ``connect``)."""
    client = broker.redis
    scripts = _by_client.get(client)
    if scripts is None:
        scripts = _by_client[client] = OpScripts(broker)
    return scripts
