"""OpenTelemetry: producer and consumer spans with the messaging conventions, the trace
context carried in the job, a retried delivery linked to the failed one."""

from __future__ import annotations

import subprocess
import sys

import msgspec
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from streamq import App, Context, EnqueueRequest
from streamq._types import JobSpec
from streamq.otel import instrument


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return sorted(
        (s for s in spans if s.name == name),
        key=lambda s: (s.attributes or {}).get("messaging.streamq.job.attempt", 0),
    )


async def test_consumer_span_is_a_child_of_the_producer_span(
    app_factory, queue, run_worker, exporter, provider
) -> None:
    app: App = app_factory()
    instrument(app, tracer_provider=provider)

    @app.task("greet", queue=queue)
    async def greet(ctx: Context, who: str) -> str:
        return f"hello {who}"

    tracer = provider.get_tracer("a web request")
    with tracer.start_as_current_span("POST /greetings") as request_span:
        job = await app.enqueue("greet", "ada")
    async with run_worker(app):
        assert await job.result(timeout=10) == "hello ada"

    spans = exporter.get_finished_spans()
    (send,) = by_name(spans, f"send {queue}")
    (process,) = by_name(spans, f"process {queue}")
    assert send.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    # request -> send -> process, all one trace.
    assert (
        send.parent is not None and send.parent.span_id == request_span.get_span_context().span_id
    )
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert process.context.trace_id == send.context.trace_id
    assert dict(send.attributes or {}) == {
        "messaging.system": "streamq",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": queue,
        "messaging.streamq.job.name": "greet",
        "messaging.message.id": job.id,
        "messaging.streamq.job.deduplicated": False,
    }
    assert dict(process.attributes or {}) == {
        "messaging.system": "streamq",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue,
        "messaging.consumer.group.name": "workers",
        "messaging.message.id": job.id,
        "messaging.streamq.job.name": "greet",
        "messaging.streamq.message.delivery_count": 1,
        "messaging.streamq.job.attempt": 1,
    }
    assert not process.links


async def test_a_retried_delivery_links_to_the_failed_one(
    app_factory, queue, run_worker, exporter, provider
) -> None:
    app: App = app_factory()
    instrument(app, tracer_provider=provider)

    @app.task("flaky", queue=queue, max_attempts=3, backoff=0.01)
    async def flaky(ctx: Context, x: int) -> int:
        if ctx.attempt == 1:
            raise ConnectionError("try again")
        return x

    job = await app.enqueue("flaky", 4)
    async with run_worker(app):
        assert await job.result(timeout=10) == 4

    spans = exporter.get_finished_spans()
    (send,) = by_name(spans, f"send {queue}")
    first, second = by_name(spans, f"process {queue}")
    assert (first.attributes or {})["messaging.streamq.job.attempt"] == 1
    assert (second.attributes or {})["messaging.streamq.job.attempt"] == 2
    assert (second.attributes or {})["messaging.streamq.message.delivery_count"] == 2
    assert first.status.status_code is StatusCode.ERROR
    assert (first.attributes or {})["error.type"] == "ConnectionError"
    assert second.status.status_code is not StatusCode.ERROR
    # Both deliveries belong to the job's trace; the second points back at the first.
    for delivery in (first, second):
        assert delivery.parent is not None and delivery.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in second.links] == [first.context.span_id]
    assert not first.links


async def test_a_batch_gets_one_send_span_per_job(app_factory, queue, exporter, provider) -> None:
    app: App = app_factory()
    instrument(app, tracer_provider=provider)

    @app.task("noop", queue=queue)
    async def noop(ctx: Context, x: int) -> None:
        pass

    handles = await app.enqueue_many([EnqueueRequest(name="noop", payload=i) for i in range(3)])
    sends = by_name(exporter.get_finished_spans(), f"send {queue}")
    assert sorted(str((s.attributes or {})["messaging.message.id"]) for s in sends) == sorted(
        h.id for h in handles
    )
    assert {(s.attributes or {})["messaging.batch.message_count"] for s in sends} == {3}
    assert len({s.context.span_id for s in sends}) == 3


def test_the_trace_context_travels_in_a_field_older_workers_ignore() -> None:
    class OlderSpec(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
        name: str
        payload: msgspec.Raw
        lane: str = "normal"

    carried = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    wire = msgspec.msgpack.encode(JobSpec(name="x", payload=msgspec.Raw(b"\x01"), headers=carried))
    assert msgspec.msgpack.decode(wire, type=OlderSpec).name == "x"
    assert msgspec.msgpack.decode(wire, type=JobSpec).headers == carried


def test_streamq_works_without_opentelemetry_and_says_how_to_get_it() -> None:
    # As if the extra were not installed: every import of opentelemetry fails.
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "import streamq, streamq.testing\n"
        "app = streamq.App('x')\n"
        "app.middleware(lambda call, call_next: call_next())\n"
        "assert 'streamq._otel' not in sys.modules\n"
        "try:\n"
        "    import streamq.otel\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'streamq[otel]'" in done.stdout
