"""Server configuration: defaults, environment variables and the API token list.

Environment variables (all optional):

- ``STREAMQ_API_TOKENS``: ``name=token:scope1+scope2,token2:read`` (see ``parse_tokens``).
  Scopes are ``meta``, ``read``, ``write`` or ``admin``, each optionally limited to the queues
  a glob matches (``read:analysis-*``); ``admin`` implies ``write`` and ``read``, ``read``
  implies ``meta`` (read without payloads, results and errors). Tokens must be at least 32
  characters long.
- ``STREAMQ_API_TOKENS_FILE``: a file holding the same entries, one or more per line,
  ``#`` starts a comment.
- ``STREAMQ_HOST`` / ``STREAMQ_PORT``: where ``streamq serve`` binds.
- ``STREAMQ_SSE_HEARTBEAT``: seconds between SSE heartbeat comments (default 15).
- ``STREAMQ_MAX_BODY_BYTES``, ``STREAMQ_MAX_BATCH``, ``STREAMQ_MAX_PAYLOAD_BYTES``,
  ``STREAMQ_MAX_PAYLOAD_DEPTH``: request limits.
- ``STREAMQ_RATE_LIMIT``: requests per second per token (``0`` turns it off),
  ``STREAMQ_RATE_BURST``: the bucket size.
- ``STREAMQ_SSE_MAX_PER_TOKEN``: concurrent SSE connections per token.
- ``STREAMQ_REQUEST_DEADLINE``: seconds a request may wait on Redis before a 503 (1.5).
- ``STREAMQ_MAX_CONNECTIONS`` (2048), ``STREAMQ_HEADER_TIMEOUT`` (5 s to send a request
  head), ``STREAMQ_KEEP_ALIVE`` (5 s idle between requests), ``STREAMQ_BODY_TIMEOUT`` (10 s
  to send a body): connection limits.
- ``STREAMQ_TRUSTED_PROXIES``, ``STREAMQ_ALLOWED_HOSTS``: comma lists (without tokens).
- ``STREAMQ_FAILED_AUTH_PER_MINUTE`` (10), ``STREAMQ_PROBE_RATE`` (5/s for /metrics and
  /readyz per client), ``STREAMQ_ENQUEUE_RATE`` (100 jobs/s per token),
  ``STREAMQ_ENQUEUE_BURST`` (1000), ``STREAMQ_ENQUEUE_BYTES_PER_MINUTE`` (64 MiB),
  ``STREAMQ_MAX_DELAY`` (30 days): throttles and quotas.

Plain tokens never live in a settings object: only their sha256 digests do.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

SCOPES = ("meta", "read", "write", "admin")
# A token shorter than this is refused when the server starts: guessable.
MIN_TOKEN_LENGTH = 32
_NAME = re.compile(r"([A-Za-z][A-Za-z0-9_.-]{0,63})=(.+)")
_PATTERN = re.compile(r"[A-Za-z0-9._:@*?-]{1,200}")


class SettingsError(ValueError):
    """A configuration value is malformed (raised at start, never per request)."""


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    """One scope of a token: ``kind`` over the queues matching ``pattern`` (a glob)."""

    kind: str
    pattern: str = "*"


class ApiToken(msgspec.Struct, frozen=True, kw_only=True):
    """One configured token: the sha256 hex digest of the secret, its grants and its name
    (for logs and audit; never the secret). ``length`` is the secret's length, kept to refuse
    short tokens at start."""

    digest: str
    grants: tuple[Grant, ...]
    name: str
    length: int = MIN_TOKEN_LENGTH

    @property
    def scopes(self) -> frozenset[str]:
        """The kinds granted (over any queue), e.g. ``{"read", "write"}``."""
        return frozenset(g.kind for g in self.grants)


def hash_token(secret: str) -> str:
    """The sha256 hex digest under which a token is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_grant(text: str) -> Grant:
    """``read``, ``read:<glob>``, ``meta:<glob>``, ``write:<glob>`` or ``admin:<glob>``
    (no glob = every queue). Raises SettingsError for anything else."""
    kind, sep, pattern = text.partition(":")
    if kind not in SCOPES or (sep and not _PATTERN.fullmatch(pattern)):
        raise SettingsError(
            f"unknown scope {text!r}: use {', '.join(SCOPES)}, optionally with ':<queue glob>' "
            "(letters, digits, ._:@- and the wildcards * ?)"
        )
    return Grant(kind=kind, pattern=pattern if sep else "*")


def parse_tokens(spec: str) -> tuple[ApiToken, ...]:
    """Parse ``[name=]token:scope1+scope2,...`` (commas or newlines between entries).

    A token is everything before the first ``:`` (so it holds no colon); scopes are
    ``+``-separated grants (see ``parse_grant``). Without a name, the token is named after
    the first 8 hex digits of its digest. Raises SettingsError for an entry without scopes or
    with an unknown scope. Short tokens parse; ``check_tokens`` refuses them at start.
    """
    tokens: list[ApiToken] = []
    for line in spec.splitlines():
        line = line.split("#", 1)[0]
        for raw in line.split(","):
            entry = raw.strip()
            if not entry:
                continue
            secret, sep, scope_text = entry.partition(":")
            name = ""
            named = _NAME.fullmatch(secret)
            if named:
                name, secret = named.group(1), named.group(2)
            if not sep or not secret or not scope_text.strip():
                raise SettingsError(
                    f"API token entry {_redact(entry)!r} must look like 'name=token:read+write'"
                )
            try:
                grants = tuple(parse_grant(s.strip()) for s in scope_text.split("+") if s.strip())
            except SettingsError as exc:
                raise SettingsError(f"API token {_redact(secret)!r}: {exc}") from None
            digest = hash_token(secret)
            tokens.append(
                ApiToken(
                    digest=digest,
                    grants=grants,
                    name=name or f"token-{digest[:8]}",
                    length=len(secret),
                )
            )
    return tuple(tokens)


def check_tokens(tokens: tuple[ApiToken, ...]) -> None:
    """Raises SettingsError if a token is shorter than MIN_TOKEN_LENGTH characters."""
    short = [t.name for t in tokens if t.length < MIN_TOKEN_LENGTH]
    if short:
        raise SettingsError(
            f"API tokens {', '.join(short)} are shorter than {MIN_TOKEN_LENGTH} characters; "
            "use e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )


def _redact(text: str) -> str:
    return text[:4] + "..." if len(text) > 4 else "..."


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the HTTP server can be tuned with; see the module docstring for env names."""

    host: str = "127.0.0.1"
    port: int = 8000
    tokens: tuple[ApiToken, ...] = ()
    heartbeat_seconds: float = 15.0
    max_body_bytes: int = 1024 * 1024
    max_batch: int = 1000
    max_payload_bytes: int = 256 * 1024
    max_payload_depth: int = 32
    rate_limit_per_second: float = 200.0
    rate_limit_burst: int = 400
    sse_max_per_token: int = 64
    # Events buffered for one slow SSE client before it falls back to reading Redis itself.
    sse_client_buffer: int = 2048
    # How far before a job's created_at its per-job stream looks for its first events.
    job_history_margin_seconds: float = 5.0
    stats_sample_seconds: float = 5.0
    # Requests (and SSE catch-up reads) using Redis at once: bursts wait for a slot instead
    # of exhausting the App's connection pool. SSE feeds' blocking reads are not counted.
    max_concurrent_redis: int = 32
    include_process_metrics: bool = True
    # Longest a request may wait on Redis (slot, connection, commands) before it answers
    # 503 broker_unavailable: a frozen Redis must not hang clients (the App's own socket
    # timeout is 30 s, retried). SSE streams are bounded only while they open.
    request_deadline_seconds: float = 1.5
    # /readyz answers from a probe at most this old, so a flood of probes is not a flood
    # of PINGs.
    readiness_cache_seconds: float = 1.0
    # Connection limits (see server.connections): open connections at most; seconds for a
    # client to send a whole request head (slowloris); idle seconds between two requests of
    # a keep-alive connection; seconds to send a request body.
    max_connections: int = 2048
    header_timeout_seconds: float = 5.0
    keep_alive_seconds: float = 5.0
    body_timeout_seconds: float = 10.0
    # Without tokens (loopback only): addresses of proxies whose Forwarded/X-Forwarded-*/
    # X-Real-IP headers are believed (otherwise a request carrying one is refused), and Host
    # names accepted besides the bound address, localhost, 127.0.0.1 and [::1].
    trusted_proxies: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    # Wrong tokens per client address: a burst, then this many a minute (then 429).
    failed_auth_burst: int = 20
    failed_auth_per_minute: float = 10.0
    # /metrics and /readyz per client address (each may cost Redis reads).
    probe_rate_per_second: float = 5.0
    probe_burst: int = 20
    # Quotas per token: jobs enqueued per second (a bucket of ``enqueue_burst``, so one
    # full batch fits), payload bytes per minute, and the furthest delay a job may ask for.
    enqueue_per_second: float = 100.0
    enqueue_burst: int = 1000
    enqueue_bytes_per_minute: int = 64 * 1024 * 1024
    max_delay_seconds: float = 30 * 86400.0

    @property
    def auth_enabled(self) -> bool:
        return bool(self.tokens)

    def with_tokens(self, spec: str) -> ServerSettings:
        """A copy with the tokens of ``spec`` (same format as ``STREAMQ_API_TOKENS``)."""
        return msgspec.structs.replace(self, tokens=parse_tokens(spec))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from environment variables, then ``overrides``.

        Raises SettingsError when a variable is malformed or the token file is unreadable.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        spec = env.get("STREAMQ_API_TOKENS", "")
        path = env.get("STREAMQ_API_TOKENS_FILE", "")
        if path:
            try:
                spec += "\n" + Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise SettingsError(f"cannot read STREAMQ_API_TOKENS_FILE {path!r}: {exc}") from exc
        if spec.strip():
            values["tokens"] = parse_tokens(spec)
        for var, field, kind in _ENV_FIELDS:
            if var in env and env[var].strip():
                values[field] = _convert(var, env[var].strip(), kind)
        values.update(overrides)
        try:
            return msgspec.convert(values, cls)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"invalid server setting: {exc}") from exc


_ENV_FIELDS: tuple[tuple[str, str, type], ...] = (
    ("STREAMQ_HOST", "host", str),
    ("STREAMQ_PORT", "port", int),
    ("STREAMQ_SSE_HEARTBEAT", "heartbeat_seconds", float),
    ("STREAMQ_MAX_BODY_BYTES", "max_body_bytes", int),
    ("STREAMQ_MAX_BATCH", "max_batch", int),
    ("STREAMQ_MAX_PAYLOAD_BYTES", "max_payload_bytes", int),
    ("STREAMQ_MAX_PAYLOAD_DEPTH", "max_payload_depth", int),
    ("STREAMQ_RATE_LIMIT", "rate_limit_per_second", float),
    ("STREAMQ_RATE_BURST", "rate_limit_burst", int),
    ("STREAMQ_SSE_MAX_PER_TOKEN", "sse_max_per_token", int),
    ("STREAMQ_REQUEST_DEADLINE", "request_deadline_seconds", float),
    ("STREAMQ_MAX_CONNECTIONS", "max_connections", int),
    ("STREAMQ_HEADER_TIMEOUT", "header_timeout_seconds", float),
    ("STREAMQ_KEEP_ALIVE", "keep_alive_seconds", float),
    ("STREAMQ_BODY_TIMEOUT", "body_timeout_seconds", float),
    ("STREAMQ_TRUSTED_PROXIES", "trusted_proxies", tuple),
    ("STREAMQ_ALLOWED_HOSTS", "allowed_hosts", tuple),
    ("STREAMQ_FAILED_AUTH_PER_MINUTE", "failed_auth_per_minute", float),
    ("STREAMQ_PROBE_RATE", "probe_rate_per_second", float),
    ("STREAMQ_ENQUEUE_RATE", "enqueue_per_second", float),
    ("STREAMQ_ENQUEUE_BURST", "enqueue_burst", int),
    ("STREAMQ_ENQUEUE_BYTES_PER_MINUTE", "enqueue_bytes_per_minute", int),
    ("STREAMQ_MAX_DELAY", "max_delay_seconds", float),
)


def _convert(var: str, text: str, kind: type) -> Any:
    if kind is str:
        return text
    if kind is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    try:
        return kind(text.removesuffix("/s"))
    except ValueError:
        raise SettingsError(f"{var}={text!r} is not a valid {kind.__name__}") from None


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
