"""The Polymarket jobs through the broker: anomaly batches find the injected anomalies, alerts
are delivered at the rate limit, whales are ranked, failing webhooks end as dead letters."""

from __future__ import annotations

import time

import anyio
import pytest

import streamq
from processors.errors import ProviderError
from processors.models import Alert
from processors.providers.base import Providers
from processors.providers.simulator import simulated_providers
from tests.support.deployment import deployment


class RecordingSink:
    """An alert sink that records when each alert arrived, or fails as told."""

    def __init__(self, fail: bool | None = None) -> None:
        self.sent: list[tuple[float, str]] = []
        self.attempts = 0
        self.fail = fail  # None: deliver; True: retryable failure; False: permanent failure

    async def send(self, alert: Alert) -> None:
        self.attempts += 1
        if self.fail is not None:
            raise ProviderError(
                "webhook answered 503" if self.fail else "webhook answered 404",
                provider="webhook",
                retryable=self.fail,
                status=503 if self.fail else 404,
            )
        self.sent.append((time.monotonic(), alert.id))


def with_sink(sink: RecordingSink, seed: int = 7) -> Providers:
    p = simulated_providers(seed=seed)
    return Providers(chain=p.chain, tokens=p.tokens, polymarket=p.polymarket, alerts=sink)


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def test_anomaly_batch_finds_injected_anomalies_and_alerts_at_the_rate_limit(
    valkey_url: str,
) -> None:
    sink = RecordingSink()
    providers = with_sink(sink)
    world = providers.polymarket.world  # type: ignore[attr-defined]
    async with deployment(valkey_url, providers=providers, alert_limit=20, alert_window=1.0) as d:
        batch = await (await d.app.enqueue("batch-detection", {})).result(timeout=60)
        found, truth = set(batch["anomalies"]), set(world.anomalies)
        recall = len(found & truth) / len(truth)
        precision = len(found & truth) / len(found)
        print(
            f"anomaly batch job: recall {recall:.3f}, precision {precision:.3f}, "
            f"{batch['checked']} trades checked, {len(batch['alerts'])} alerts"
        )
        assert recall >= 0.9 and precision >= 0.9
        assert batch["ingested"] == batch["checked"] == len(world.trades)
        alerts = d.queue("polymarket-alerts")
        for a in batch["alerts"]:
            sent = await d.app.handle(alerts, f"alert-{a}").result(timeout=30)
            assert sent == {"alert_id": a, "status": "sent"}
        assert sorted(a for _, a in sink.sent) == sorted(batch["alerts"])
        busiest = max_in_window([t for t, _ in sink.sent], 0.9)
        print(f"alerts: {len(sink.sent)} delivered, at most {busiest} in any 0.9 s")
        assert busiest <= 20
        # The next batch starts where this one stopped: nothing new to check.
        again = await (await d.app.enqueue("batch-detection", {})).result(timeout=30)
        assert again["ingested"] == again["checked"] == 0

        whales = await (await d.app.enqueue("update-all-whales", {"top": 20})).result(timeout=30)
        assert set(whales["whales"][: len(world.whales)]) == world.whales

        one = next(iter(truth & found))
        score = await (await d.app.enqueue("analyze-transaction", {"trade_id": one})).result(
            timeout=30
        )
        assert score["flagged"] and score["trade_id"] == one
        with pytest.raises(streamq.JobFailed, match="not found"):
            await (await d.app.enqueue("analyze-transaction", {"trade_id": "0xnope"})).result(
                timeout=30
            )


@pytest.mark.parametrize("retryable", [True, False])
async def test_a_failing_webhook_ends_in_the_dead_letter_stream(
    valkey_url: str, retryable: bool
) -> None:
    sink = RecordingSink(fail=retryable)
    async with deployment(valkey_url, providers=with_sink(sink)) as d:
        store = d.runtime.store
        alert = Alert(
            id="anomaly-test",
            kind="polymarket-anomaly",
            severity="critical",
            title="t",
            description="d",
            created_at=1,
        )
        assert store.add_alert(alert)
        queue = d.queue("polymarket-alerts")
        handle = await d.app.enqueue("send-alert", {"alert_id": alert.id}, id=f"alert-{alert.id}")
        with pytest.raises(streamq.JobFailed, match="webhook answered"):
            await handle.result(timeout=30)
        dead = await d.app.dead_letters(queue)
        status = store.alert(alert.id)
    assert [x.job for x in dead] == [handle.id]
    assert sink.attempts == (3 if retryable else 1)  # the plan's 3 attempts, or none to spare
    assert status is not None and status[1] == ("pending" if retryable else "failed")


async def test_recurring_jobs_are_scheduled_and_run_under_the_scheduler(valkey_url: str) -> None:
    async with deployment(valkey_url, providers=with_sink(RecordingSink()), schedules=True) as d:
        got = {s.name: s for s in await d.app.schedules()}
        whales, batch = got["update-all-whales"], got["batch-detection"]
        assert (whales.cron, whales.tz, whales.overlap) == ("0 * * * *", "UTC", False)
        assert (batch.every, batch.overlap) == (30.0, False)
        assert whales.queue == d.queue("polymarket-whale-updates")
        # The same job on a fast stored schedule: the worker's scheduler fires it, and it runs.
        queue = d.queue("polymarket-anomaly-batch")
        await d.app.add_schedule("batch-detection", {}, every=0.5, overlap=False)
        with anyio.fail_after(20):
            async for event in d.app.events(queue, after="0-0"):
                if event.type == "completed":
                    assert event.name == "batch-detection"
                    break
