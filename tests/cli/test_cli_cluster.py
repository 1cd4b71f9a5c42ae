"""The operator commands against a 3-shard cluster (ops/cluster/start.sh): queues spread over
shards by hash tag, and every read and write the CLI does stays within one queue's slot."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import ROOT, cli

from streamq import App, Context, Fatal, JobFailed

CLUSTER = ROOT / "ops" / "cluster"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture
def cluster_url(tmp_path: Path) -> Iterator[str]:
    ports = _free_ports(6)
    env = {**os.environ, "STREAMQ_CLUSTER_BUS_PORTS": ",".join(map(str, ports[3:]))}
    data = tmp_path / "cluster"
    try:
        subprocess.run(
            [str(CLUSTER / "start.sh"), str(data), *map(str, ports[:3])],
            check=True,
            env=env,
            timeout=60,
            capture_output=True,
        )
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports[:3])
    finally:
        subprocess.run([str(CLUSTER / "stop.sh"), str(data)], timeout=60, capture_output=True)


async def test_inspect_and_replay_on_a_cluster(
    cluster_url: str,
    run_worker: Any,
    capsys: pytest.CaptureFixture[str],
    uniq: Callable[[str], str],
) -> None:
    queues = [uniq("cq") for _ in range(3)]
    app = App("cluster-cli", redis_url=cluster_url)
    healed: set[str] = set()
    for queue in queues:

        @app.task(f"job-{queue}", queue=queue)
        async def job(ctx: Context, n: int) -> int:
            if ctx.job_id.startswith("bad") and ctx.job_id not in healed:
                raise Fatal("NOT_YET")
            return n

    url = ("--redis-url", cluster_url)
    try:
        async with run_worker(app, concurrency=10):
            for queue in queues:
                await app.enqueue(f"job-{queue}", 1, id=f"ok-{queue}")
                await app.enqueue(f"job-{queue}", 2, id=f"bad-{queue}")
            for queue in queues:
                assert await app.handle(queue, f"ok-{queue}").result(timeout=10) == 1
                with pytest.raises(JobFailed):
                    await app.handle(queue, f"bad-{queue}").result(timeout=10)

            r = await cli(capsys, "inspect", "queues", "--json", *url)
            assert r.code == 0, r.err
            seen = {q["queue"]: q for q in r.json()}
            for queue in queues:
                assert seen[queue]["totals"]["completed"] == 1 and seen[queue]["dead"] == 1
                assert seen[queue]["workers"] == 1
            queue = queues[0]
            r = await cli(capsys, "inspect", "groups", queue, "--json", *url)
            assert r.code == 0 and len(r.json()["workers"]) == 1
            r = await cli(capsys, "inspect", "lanes", queue, "--json", *url)
            assert r.code == 0 and {x["lane"] for x in r.json()} >= {"normal"}
            r = await cli(capsys, "inspect", "pending", queue, "--json", *url)
            assert r.code == 0 and r.json() == []
            r = await cli(capsys, "inspect", "job", queue, f"ok-{queue}", "--json", *url)
            assert r.json()["job"]["state"] == "completed"
            r = await cli(capsys, "inspect", "dead", queue, "--json", *url)
            assert [d["job"] for d in r.json()["letters"]] == [f"bad-{queue}"]

            healed.update(f"bad-{q}" for q in queues)
            for q in queues:
                r = await cli(capsys, "dead", "replay", q, "--all", "--json", *url)
                assert r.code == 0 and r.json()["done"] == 1, r.err
                assert await app.handle(q, f"bad-{q}").result(timeout=10) == 2
    finally:
        await app.close()
