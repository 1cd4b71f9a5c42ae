"""streamq on a 3-shard Valkey cluster (ops/cluster recipe): each queue's keys in one slot,
queues spread over the shards, jobs run end to end."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from streamq import App, Context, EnqueueRequest, Worker, _keys

OPS = Path(__file__).resolve().parents[2] / "ops" / "cluster"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture
def cluster_url(tmp_path: Path) -> Iterator[str]:
    ports = _free_ports(6)
    env = {**os.environ, "STREAMQ_CLUSTER_BUS_PORTS": ",".join(map(str, ports[3:]))}
    data = tmp_path / "cluster"
    subprocess.run(
        [str(OPS / "start.sh"), str(data), *map(str, ports[:3])],
        check=True,
        env=env,
        timeout=60,
        capture_output=True,
    )
    try:
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports[:3])
    finally:
        subprocess.run([str(OPS / "stop.sh"), str(data)], check=True, timeout=60)


async def test_jobs_of_several_queues_complete_on_a_cluster(cluster_url: str) -> None:
    queues = [f"cq-{i}" for i in range(6)]
    app = App("cluster", redis_url=cluster_url)
    for queue in queues:

        @app.task(f"double-{queue}", queue=queue, max_attempts=2, backoff=0.05)
        async def double(ctx: Context, x: int) -> int:
            await ctx.progress(50, "half")
            if ctx.attempt == 1 and x % 7 == 0:
                raise ConnectionError("retry me")
            return 2 * x

    worker = Worker(app, concurrency=20)
    task = asyncio.create_task(worker.run())
    try:
        handles = []
        for queue in queues:
            handles += await app.enqueue_many(
                [EnqueueRequest(name=f"double-{queue}", payload=i) for i in range(30)]
            )
        results = [await h.result(timeout=30) for h in handles]
        assert results == [2 * i for _ in queues for i in range(30)]
        stats = await app.stats(queues[0])
        assert stats.totals["completed"] == 30 and stats.totals["retried"] == 5
    finally:
        worker.stop()
        await task
        await app.close()
    host, port = cluster_url.removeprefix("redis+cluster://").split(",")[0].split(":")
    rc = RedisCluster(host=host, port=int(port))
    try:
        owners = set()
        for queue in queues:
            keys = [
                _keys.lane(queue, "normal"),
                _keys.events(queue),
                _keys.stats(queue),
                _keys.job(queue, handles[0].id),
            ]
            assert len({rc.keyslot(k) for k in keys}) == 1
            node = rc.get_node_from_key(_keys.events(queue))
            assert node is not None
            owners.add(node.port)
        print(f"\n{len(queues)} queues over {len(owners)} shards")
        assert len(owners) >= 2
    finally:
        rc.close()
