"""Attributes read through another object: what the app, sync handles and handler calls expose."""

from __future__ import annotations

import pytest

from streamq import App
from streamq._handle import JobHandle
from streamq._sync import SyncJobHandle, sync_runner


def test_the_apps_retention_settings_read_and_write_its_brokers() -> None:
    app = App("forward", redis_url="redis://127.0.0.1:1/0", keep_last=3, dead_ttl=60.0)
    assert (app.keep_last, app.dead_ttl) == (3, 60.0)
    app.keep_last = 0
    app.result_ttl = 5.0
    assert app.broker.retention.keep_last == 0
    assert app.broker.retention.result_ttl == 5.0
    assert app.url == "redis://127.0.0.1:1/0"


def test_a_forwarded_attribute_cannot_be_set() -> None:
    app = App("forward", redis_url="redis://127.0.0.1:1/0")
    handle = SyncJobHandle(
        sync_runner(app.broker, app.registry), JobHandle(app.broker, "q", "j1", name="n")
    )
    assert (handle.id, handle.queue, handle.name, handle.deduplicated) == ("j1", "q", "n", False)
    with pytest.raises(AttributeError, match="'id' of 'SyncJobHandle' object has no setter"):
        handle.id = "j2"  # type: ignore[assignment]
    with pytest.raises(AttributeError, match="'url' of 'App' object has no setter"):
        app.url = "redis://elsewhere"  # type: ignore[assignment]
    assert handle.id == "j1"
    assert app.url == "redis://127.0.0.1:1/0"
