"""OpenTelemetry tracing for streamq, built on the middleware mechanism (needs the ``otel``
extra: ``pip install 'streamq[otel]'``; nothing imports this module unless asked to).

Spans follow the OpenTelemetry messaging semantic conventions:

- ``send {queue}`` (PRODUCER) around each enqueued job, whose context is injected (W3C
  ``traceparent``, plus baggage, through the global propagator) into the job's headers. Older
  workers ignore the headers: they are the last field of the job spec.
- ``process {queue}`` (CONSUMER) around each delivery, a child of the job's ``send`` span, with
  the delivery count and the job's attempt. A delivery that follows a failed one carries a link
  to the failed delivery's span: when a traced handler raises, its span context is kept under
  the job's queue for a day, and the next delivery (only one that is not the first) reads it.
  A job's first delivery costs no Redis call; a delivery after a crash (the crashed one could
  not write) has only its parent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "streamq's OpenTelemetry support needs the otel extra: pip install 'streamq[otel]'"
    ) from exc

from streamq import _keys
from streamq._connection import as_text
from streamq._errors import Fatal
from streamq._middleware import EnqueueCall, HandlerCall

if TYPE_CHECKING:
    from streamq._context import Application

__all__ = ["Tracing", "instrument"]

SYSTEM = "streamq"
# How long a failed delivery's span context waits for the next delivery to link to it.
_LINK_TTL = 86_400

# The link to a failed delivery is stored as a W3C traceparent whatever the global propagator.
_W3C = TraceContextTextMapPropagator()

try:
    _VERSION = version("streamq")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0"


class Tracing:
    """The tracing middleware: ``app.middleware(Tracing(provider))``, or :func:`instrument`.
    ``tracer_provider`` defaults to the global one."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("streamq", _VERSION, tracer_provider=tracer_provider)

    async def __call__(
        self, call: EnqueueCall | HandlerCall, call_next: Callable[[], Awaitable[Any]]
    ) -> Any:
        if isinstance(call, EnqueueCall):
            return await self._send(call, call_next)
        return await self._process(call, call_next)

    async def _send(self, call: EnqueueCall, call_next: Callable[[], Awaitable[Any]]) -> Any:
        spans = []
        for job in call.jobs:
            queue = call.queue_of(job) or "unknown"
            attributes: dict[str, Any] = {
                "messaging.system": SYSTEM,
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.destination.name": queue,
                "messaging.streamq.job.name": job.name,
            }
            if job.id is not None:
                attributes["messaging.message.id"] = job.id
            if len(call.jobs) > 1:
                attributes["messaging.batch.message_count"] = len(call.jobs)
            span = self.tracer.start_span(
                f"send {queue}", kind=SpanKind.PRODUCER, attributes=attributes
            )
            propagate.inject(job.headers, context=trace.set_span_in_context(span))
            spans.append(span)
        try:
            if len(spans) == 1:
                # One job: its span is current, so client spans (Redis) nest under it.
                with trace.use_span(spans[0], end_on_exit=False, record_exception=False):
                    handles = await call_next()
            else:
                handles = await call_next()
        except BaseException as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.set_attribute("error.type", type(exc).__qualname__)
                span.end()
            raise
        for span, handle in zip(spans, handles, strict=True):
            span.set_attribute("messaging.message.id", handle.id)
            span.set_attribute("messaging.streamq.job.deduplicated", handle.deduplicated)
            span.end()
        return handles

    async def _process(self, call: HandlerCall, call_next: Callable[[], Awaitable[Any]]) -> Any:
        app: Application = call.context.app
        links = []
        if call.deliveries > 1 or call.attempt > 1:
            previous = await app.broker.redis.get(_link_key(call))
            if previous is not None:
                stored = {"traceparent": as_text(previous)}
                linked = trace.get_current_span(_W3C.extract(stored)).get_span_context()
                if linked.is_valid:
                    links.append(Link(linked, {"messaging.streamq.link": "previous_delivery"}))
        span = self.tracer.start_span(
            f"process {call.queue}",
            context=propagate.extract(call.headers),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": call.queue,
                "messaging.consumer.group.name": _keys.GROUP,
                "messaging.message.id": call.job_id,
                "messaging.streamq.job.name": call.name,
                "messaging.streamq.message.delivery_count": call.deliveries,
                "messaging.streamq.job.attempt": call.attempt,
            },
        )
        with trace.use_span(span, end_on_exit=True):
            try:
                return await call_next()
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                if not isinstance(exc, Fatal):  # a fatal error has no next delivery
                    carrier: dict[str, str] = {}
                    _W3C.inject(carrier)
                    if "traceparent" in carrier:
                        await app.broker.redis.set(
                            _link_key(call), carrier["traceparent"], ex=_LINK_TTL
                        )
                raise


def _link_key(call: HandlerCall) -> str:
    return _keys.custom(call.queue, "trace", call.job_id)


def instrument(app: Any, tracer_provider: trace.TracerProvider | None = None) -> Tracing:
    """Traces ``app``'s enqueues and handler runs (see the module docstring); returns the
    middleware it registered. Call it once per app, in producers and workers alike."""
    tracing = Tracing(tracer_provider)
    app.middleware(tracing)
    return tracing
