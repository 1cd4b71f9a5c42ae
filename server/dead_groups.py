"""Dead letters grouped by how they failed: the error's signature (its last line with
numbers, hex ids and quoted values masked), so a thousand letters of one bug read as one row.
The dashboard's dead-letter page and ``GET /v1/queues/{q}/dead-letters?group=error`` share it."""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from streamq import DeadLetter

_HEX = re.compile(r"0x[0-9a-fA-F]+|\b[0-9a-f]{8,}\b")
_NUMBER = re.compile(r"\d+(\.\d+)?")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def error_signature(reason: str, error: str | None) -> str:
    """What dead letters failing the same way share: the last line of the error (the
    exception and its message) with numbers, hex ids and quoted values masked."""
    lines = [line.strip() for line in (error or "").strip().splitlines() if line.strip()]
    text = lines[-1] if lines else f"({reason or 'no error'})"
    text = _QUOTED.sub("'…'", _HEX.sub("#", text))
    return _NUMBER.sub("#", text)[:200]


class ErrorGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Dead letters sharing an error signature: how many, their job names and reasons, their
    entry ids (to replay or purge them) and when the first and last died (epoch seconds)."""

    signature: str
    count: int
    names: list[str]
    reasons: list[str]
    ids: list[str]
    first_at: float
    last_at: float


def group_by_error(letters: Sequence[DeadLetter]) -> list[ErrorGroup]:
    """Groups of ``letters``, the largest first."""
    by: dict[str, list[DeadLetter]] = {}
    for d in letters:
        by.setdefault(error_signature(d.reason, d.error), []).append(d)
    groups = [
        ErrorGroup(
            signature=signature,
            count=len(ds),
            names=sorted({d.name for d in ds}),
            reasons=sorted({d.reason for d in ds}),
            ids=[d.id for d in ds],
            first_at=min(d.at for d in ds),
            last_at=max(d.at for d in ds),
        )
        for signature, ds in by.items()
    ]
    return sorted(groups, key=lambda g: (-g.count, g.signature))
