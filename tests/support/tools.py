"""External tools some tests need, found on PATH or the test is skipped — unless CI asks for
them (``STREAMQ_REQUIRE_PROMTOOL=1``, set by ``.ci/run``), in which case a missing tool fails
the test instead of letting it pass silently on a fresh machine."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["REQUIRE_PROMTOOL", "promtool"]

REQUIRE_PROMTOOL = os.environ.get("STREAMQ_REQUIRE_PROMTOOL") == "1"


def promtool() -> str:
    """The path of ``promtool`` (Debian's ``prometheus`` package); skips the test without it,
    or fails it under ``STREAMQ_REQUIRE_PROMTOOL=1``."""
    found = shutil.which("promtool")
    if found is None:
        message = "promtool not installed (Debian: apt-get install prometheus)"
        if REQUIRE_PROMTOOL:
            pytest.fail(message + " (STREAMQ_REQUIRE_PROMTOOL=1: CI must run these tests)")
        pytest.skip(message)
    return found
