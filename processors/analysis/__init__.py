"""The analyses, as pure functions over provider data: no I/O, no clock, no store."""

from __future__ import annotations
