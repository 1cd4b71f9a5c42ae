"""The advanced similarity flow's wall time against the sum of its parts.

    .venv/bin/python -m tests.benchmarks.bench_similarity_flow [--wallets 10] [--latency 0.02]

Runs the whole flow (deep sync of every wallet ∥ balance fetches → similarity ∥ enrichment)
through real queues and an in-process worker, over simulated providers that take ``latency``
seconds per call, and prints: the wall time from enqueue to result, each part's run time
(from the job records), their sum, and the ratio — what running the parts in parallel saves
over running them one after another. Redis: $STREAMQ_REDIS_URL, else a private embedded
Valkey in a temp directory. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from processors.jobs.analysis import start_similarity_flow
from processors.jobs.types import SimilarityOutcome
from processors.providers.simulator import simulated_providers
from streamq._embedded import free_port, start_server
from tests.support.deployment import deployment


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    url = os.environ.get("STREAMQ_REDIS_URL")
    if url:
        yield url
        return
    directory = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    port = free_port()
    proc = start_server(directory, port)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


async def bench(url: str, n_wallets: int, latency: float, concurrency: int) -> None:
    providers = simulated_providers(seed=7, latency=latency)
    world = providers.chain.world  # type: ignore[attr-defined]
    wallets = list(world.wallets)[:n_wallets]
    with tempfile.TemporaryDirectory() as tmp:
        async with deployment(
            url,
            providers=providers,
            store_path=f"{tmp}/bench.db",
            concurrency=concurrency,
            enrichment_wait=60.0,
        ) as d:
            started = time.perf_counter()
            handle, needing = await start_similarity_flow(d.runtime, wallets, request_id="bench")
            out = msgspec.convert(await handle.result(timeout=600), SimilarityOutcome)
            wall = time.perf_counter() - started
            parts: dict[str, float] = {}
            last_child = 0.0
            wallet_q = d.queue("wallet-operations")
            for job_id in _child_ids(d, handle.id, wallets, needing):
                job = await d.app.job(wallet_q, job_id)
                if job and job.started_at and job.finished_at:
                    parts[job.name] = parts.get(job.name, 0.0) + job.finished_at - job.started_at
                    last_child = max(last_child, job.finished_at)
            if out.enrichment_job_id:
                enr = await d.app.job(d.queue("enrichment-operations"), out.enrichment_job_id)
                if enr and enr.started_at and enr.finished_at:
                    parts["enrich-token-balances"] = enr.finished_at - enr.started_at
            parent = await handle.info()
            assert parent is not None and parent.finished_at is not None
            parts["analyze-similarity (after the sync point)"] = parent.finished_at - last_child
    total = sum(parts.values())
    print(
        f"settings: {n_wallets} wallets ({len(needing)} deep-synced), simulated latency "
        f"{latency * 1000:.0f} ms per call, worker concurrency {concurrency}, redis {url}"
    )
    for name, seconds in parts.items():
        print(f"  {name:<45} {seconds:8.3f} s")
    print(f"  {'sum of the parts':<45} {total:8.3f} s")
    print(f"  {'flow wall time (enqueue -> result)':<45} {wall:8.3f} s")
    print(
        f"  parallelism: the flow took {wall / total:.0%} of the sum ({total / wall:.1f}x), "
        f"{out.processed_wallets} wallets, {len(out.similarity.pairs)} pairs"
    )


def _child_ids(d: object, parent: str, wallets: list[str], needing: list[str]) -> list[str]:
    from processors.jobs.analysis import similarity_children
    from processors.jobs.types import SimilarityRequest

    req = SimilarityRequest(wallets=wallets, request_id="bench", wallets_needing_sync=needing)
    return [str(c.id) for c in similarity_children(d.runtime, req)]  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wallets", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    print(
        f"command: python tests/benchmarks/bench_similarity_flow.py --wallets {args.wallets} "
        f"--latency {args.latency} --concurrency {args.concurrency}"
    )
    with redis_url() as url:
        asyncio.run(bench(url, args.wallets, args.latency, args.concurrency))


if __name__ == "__main__":
    main()
