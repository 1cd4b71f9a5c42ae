"""01's maintenance schedules: ``cleanup-old-cache`` and ``refresh-token-metadata`` do their
work on the store, keep the plans' number of finished runs on record, and fire once per tick
however many scheduler processes run."""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import subprocess
import sys
import time

import anyio
import msgspec

from processors.analysis.similarity import SimilarityResult
from processors.app import recurring_jobs
from processors.config import ENRICHMENT_OPERATIONS
from processors.jobs.maintenance import maintenance_runs
from processors.jobs.types import CleanupOutcome, RefreshOutcome
from processors.models import TokenInfo
from processors.providers.simulator import simulated_providers
from processors.settings import Settings
from tests.support.deployment import decode, deployment

GONE = "Gone1111111111111111111111111111111111111111"
EMPTY = SimilarityResult(
    wallets=[], skipped=[], vector_type="capital", pairs=[], shared_token_counts={}, average_score=0
)


def test_the_plans_schedules_and_retention() -> None:
    jobs = recurring_jobs()
    cleanup, refresh = jobs["cleanup-old-cache"], jobs["refresh-token-metadata"]
    assert (cleanup.cron, cleanup.keep_completed, cleanup.keep_failed) == ("0 2 * * *", 5, 10)
    assert (refresh.cron, refresh.keep_completed, refresh.keep_failed) == ("0 */6 * * *", 3, 5)
    assert cleanup.priority == refresh.priority == "bulk"  # the plans' maintenance priority


async def test_refresh_then_cleanup_do_their_work(valkey_url: str) -> None:
    providers = simulated_providers(seed=3)
    world = providers.tokens.world  # type: ignore[attr-defined]
    mints = list(world.tokens)[:38]
    now = int(time.time())
    async with deployment(valkey_url, providers=providers) as d:
        store = d.runtime.store
        store.save_token_infos(
            TokenInfo(mint=m, symbol="OLD", fetched_at=now - 7 * 3600) for m in mints[:35]
        )
        store.save_token_infos(
            TokenInfo(mint=m, symbol="KEEP", fetched_at=now - 3600) for m in mints[35:]
        )
        # A token the service no longer knows, last fetched eight days ago.
        store.save_token_infos([TokenInfo(mint=GONE, symbol="GONE", fetched_at=now - 8 * 86400)])
        store.save_similarity("req-old", EMPTY, now=now - 2 * 3600)
        store.save_similarity("req-new", EMPTY, now=now - 60)

        refresh = await d.app.enqueue("refresh-token-metadata", {})
        got = decode(await refresh.result(timeout=30), RefreshOutcome)
        assert got == RefreshOutcome(stale=36, refreshed=35)
        infos = store.token_infos(mints)
        for m in mints[:35]:
            assert infos[m].symbol == world.tokens[m].symbol and infos[m].fetched_at >= now
        assert {infos[m].symbol for m in mints[35:]} == {"KEEP"}

        cleanup = await d.app.enqueue("cleanup-old-cache", {})
        done = decode(await cleanup.result(timeout=30), CleanupOutcome)
        assert done == CleanupOutcome(similarity_results=1, token_infos=1)
        assert store.similarity("req-old") is None and store.similarity("req-new") == EMPTY
        assert GONE not in store.token_infos([GONE]) and len(store.token_infos(mints)) == 38

        [run] = await maintenance_runs(d.runtime, "cleanup-old-cache", "completed")
        assert run.job_id == cleanup.id and run.result == msgspec.to_builtins(done)


async def test_finished_runs_kept_as_the_plans_say(valkey_url: str) -> None:
    """5 completed runs of the cleanup kept (of 7), 5 failed runs of the refresh (of 6), each
    recorded once, after its last attempt."""
    async with deployment(valkey_url, providers=simulated_providers(seed=3, error_rate=1.0)) as d:
        store = d.runtime.store
        # A stale token to refresh, from a service that fails every call.
        stale = int(time.time()) - 7 * 3600
        store.save_token_infos([TokenInfo(mint=GONE, symbol="GONE", fetched_at=stale)])
        refreshes = [
            await d.app.enqueue("refresh-token-metadata", {}, id=f"r{i}") for i in range(6)
        ]
        for h in refreshes:
            assert (await h.wait(timeout=30)).state == "dead"
        cleanups = [await d.app.enqueue("cleanup-old-cache", {}, id=f"c{i}") for i in range(7)]
        for h in cleanups:
            assert (await h.wait(timeout=30)).state == "completed"
        kept = await maintenance_runs(d.runtime, "cleanup-old-cache", "completed")
        failed = await maintenance_runs(d.runtime, "refresh-token-metadata", "failed")
        assert len(kept) == 5 and len({r.job_id for r in kept}) == 5
        assert len(failed) == 5 and len({r.job_id for r in failed}) == 5
        assert all(r.attempt == 2 and r.error for r in failed)  # recorded after the last attempt
        assert await maintenance_runs(d.runtime, "refresh-token-metadata", "completed") == []


async def test_each_tick_fires_once_across_three_scheduler_processes(valkey_url: str) -> None:
    suffix = f"-t{secrets.token_hex(4)}"
    every = {"cleanup-old-cache": 1.0, "refresh-token-metadata": 1.0}
    async with deployment(valkey_url, queue_suffix=suffix, schedule_every=every) as d:
        queue = d.queue(ENRICHMENT_OPERATIONS)
        settings = Settings(
            redis_url=valkey_url, queue_suffix=suffix, schedules=True, schedule_every=every
        )
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.support.scheduler_process",
                msgspec.json.encode(settings).decode(),
                ENRICHMENT_OPERATIONS,
                "5",  # seconds each process schedules, once it is up
                stdout=subprocess.PIPE,
            )
            for _ in range(3)
        ]
        outputs = [await p.communicate() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0]
        fired = sum(json.loads(out)["fired"] for out, _ in outputs)
        # Every enqueued tick runs; then count the runs the queue's events saw complete.
        with anyio.fail_after(30):
            while (s := await d.app.stats(queue)).waiting or s.active or s.delayed:
                await asyncio.sleep(0.05)
        events = await d.app.read_events(queue, "0-0", count=10_000)
        runs: dict[str, list[str]] = {}
        for e in events:
            if e.type == "completed":
                runs.setdefault(e.name, []).append(e.job)
        assert set(runs) == set(every)
        assert sum(len(r) for r in runs.values()) == fired  # each enqueued tick ran, once
        for name, ids in runs.items():
            assert len(ids) == len(set(ids)) and len(ids) >= 2, (name, ids)
            created = sorted([(await d.app.job(queue, i)).created_at or 0.0 for i in ids])  # type: ignore[union-attr]
            # One job per tick: two runs of one schedule are a tick (1 s) apart, never less.
            assert all(b - a > 0.5 for a, b in itertools.pairwise(created)), created
