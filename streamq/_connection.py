"""Redis clients from a URL: a single server, or a cluster (comma list or redis+cluster://)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeAlias, cast
from urllib.parse import unquote

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamq._errors import BrokerUnavailable, ConfigurationError, QueueFull

_RETRY_ON = [RedisConnectionError, RedisTimeoutError]

RedisClient: TypeAlias = "aioredis.Redis | RedisCluster"
"""The client streamq talks through: one server, or a cluster."""


def is_cluster_url(url: str) -> bool:
    return url.startswith("redis+cluster://") or "," in url


def make_client(url: str, *, max_connections: int = 64) -> RedisClient:
    """A redis.asyncio client for ``url`` that retries dropped connections with backoff."""
    common: dict[str, Any] = {
        "decode_responses": False,
        "socket_timeout": 30.0,
        "socket_connect_timeout": 5.0,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.02), 3),
        "retry_on_error": _RETRY_ON,
    }
    if is_cluster_url(url):
        # redis+cluster://[user:password@]host:port,host:port,... (credentials apply to all)
        rest = url.removeprefix("redis+cluster://").removeprefix("redis://")
        userinfo, _, hosts = rest.rpartition("@")
        if userinfo:
            user, _, password = userinfo.partition(":")
            common["username"] = unquote(user) or None
            common["password"] = unquote(password) or None
        nodes = []
        for part in hosts.split(","):
            host, _, port = part.removeprefix("redis://").split("/")[0].rpartition(":")
            if not host or not port.isdigit():
                raise ConfigurationError(f"bad cluster node {part!r} in {url!r}")
            nodes.append(ClusterNode(host, int(port)))
        return RedisCluster(startup_nodes=nodes, **common)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"unsupported Redis URL {url!r}: use redis://, rediss:// or unix://"
        )
    # A blocking pool: past max_connections callers wait for a connection instead of failing,
    # so a thousand concurrent producers or waiters share the pool safely.
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=30, **common
    )
    return aioredis.Redis.from_pool(pool)  # closing the client closes the pool


def as_bytes(value: bytes | str) -> bytes:
    """A reply as bytes (the client runs with ``decode_responses=False``; redis-py's types
    allow ``str`` too)."""
    return value if isinstance(value, bytes) else value.encode()


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


StreamEntry: TypeAlias = tuple[bytes, dict[bytes, bytes]]
"""One stream entry as this client returns it: (entry id, fields), all bytes."""


def stream_entries(reply: object) -> list[StreamEntry]:
    """An XRANGE / XREVRANGE reply, typed as the client returns it (redis-py's own types
    cannot know ``decode_responses=False``)."""
    return cast("list[StreamEntry]", reply or [])


def read_entries(reply: object) -> list[tuple[bytes, list[StreamEntry]]]:
    """An XREAD reply: per stream, (key, entries); empty when the read timed out."""
    return cast("list[tuple[bytes, list[StreamEntry]]]", reply or [])


def hash_fields(reply: object) -> dict[bytes, bytes]:
    """An HGETALL reply."""
    return cast("dict[bytes, bytes]", reply or {})


@contextlib.contextmanager
def broker_errors(action: str) -> Iterator[None]:
    """Turns redis-py errors into streamq's: OOM refusals into QueueFull, the rest into
    BrokerUnavailable, both saying what was being done."""
    try:
        yield
    except ResponseError as exc:
        if isinstance(exc, OutOfMemoryError) or str(exc).startswith("OOM"):
            raise QueueFull(
                f"{action}: Redis is out of memory and refuses new jobs ({exc})"
            ) from exc
        raise BrokerUnavailable(f"{action}: {exc}") from exc
    except RedisError as exc:
        raise BrokerUnavailable(f"{action}: Redis unavailable ({exc})") from exc
    except OSError as exc:
        raise BrokerUnavailable(f"{action}: Redis unavailable ({exc})") from exc
