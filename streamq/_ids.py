"""Job ids: deterministic derivation and validation."""

from __future__ import annotations

import hashlib
import os
import re

from streamq._errors import InvalidJobId

_VALID_ID = re.compile(r"[A-Za-z0-9._:@-]{1,200}")


def job_id(name: str, *parts: object) -> str:
    """A stable id for a job type and its identifying parts: ``job_id("sync", wallet, req)``.

    The same arguments give the same id in every process and version, so enqueueing the same
    logical job twice is deduplicated. The id is ``<name>-<24 hex digits of SHA-256>``.
    Raises ``InvalidJobId`` if ``name`` itself is not id-safe.
    """
    h = hashlib.sha256()
    for part in parts:
        text = str(part).encode()
        # Length-prefixed so ("ab", "c") and ("a", "bc") differ.
        h.update(len(text).to_bytes(4, "big"))
        h.update(text)
    return validate_job_id(f"{name}-{h.hexdigest()[:24]}")


def random_job_id() -> str:
    return os.urandom(12).hex()


def validate_job_id(value: object) -> str:
    """Returns ``value`` if it is a valid job id; raises ``InvalidJobId`` otherwise."""
    if not isinstance(value, str) or not _VALID_ID.fullmatch(value):
        raise InvalidJobId(
            f"invalid job id {value!r}: use 1-200 characters of letters, digits and ._:@-"
        )
    return value
