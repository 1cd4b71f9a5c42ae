"""OpenTelemetry tracing for streamq: ``pip install 'streamq[otel]'``, then
``streamq.otel.instrument(app)`` in producers and workers. Importing this module without the
extra raises ``ImportError`` saying so; ``import streamq`` never imports OpenTelemetry."""

from __future__ import annotations

from streamq._otel import SYSTEM, Tracing, instrument

__all__ = ["SYSTEM", "Tracing", "instrument"]
