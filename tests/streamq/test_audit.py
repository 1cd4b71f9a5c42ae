"""``App.record_audit``: an ``audit`` event in a queue's events stream, under no job, read back
like every event and capped with them."""

from __future__ import annotations

import pytest

from streamq import InvalidQueueName, _keys


async def test_an_audit_event_is_read_back_like_any_event(app_factory, queue) -> None:
    app = app_factory(events_maxlen=100)
    await app.connect()
    jobs = [f"j{i}" for i in range(60)]
    entry = await app.record_audit(
        queue, action="enqueue_batch", caller="writer", status=202, outcome="ok", jobs=jobs
    )
    [event] = await app.read_events(queue, after="0-0")
    assert (event.id, event.type, event.name, event.job) == (entry, "audit", "enqueue_batch", "")
    assert event.message is not None
    assert event.message.startswith("caller=writer status=202 outcome=ok jobs=j0,j1,")
    assert event.message.endswith(",j49,...(+10)")
    for _ in range(300):
        await app.record_audit(queue, action="cancel_job", caller="w", status=200, outcome="ok")
    # Capped like the job events (approximately: whole radix-tree nodes are trimmed).
    assert await app.redis.xlen(_keys.events(queue)) < 300


async def test_a_bad_queue_name_is_refused(app_factory) -> None:
    app = app_factory()
    with pytest.raises(InvalidQueueName):
        await app.record_audit("a{b}", action="x", caller="w", status=200, outcome="ok")
