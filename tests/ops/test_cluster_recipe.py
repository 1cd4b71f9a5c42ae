"""ops/cluster/start.sh forms a working 3-shard cluster on which streamq's hash tags spread."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from ops_support import OPS, free_ports
from redis.cluster import RedisCluster

START = OPS / "cluster" / "start.sh"
STOP = OPS / "cluster" / "stop.sh"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[int]]:
    ports = free_ports(6)
    client_ports, bus_ports = ports[:3], ports[3:]
    env = {**os.environ, "STREAMQ_CLUSTER_BUS_PORTS": ",".join(map(str, bus_ports))}
    data = tmp_path / "cluster"
    try:
        subprocess.run(
            [str(START), str(data), *map(str, client_ports)],
            check=True,
            env=env,
            timeout=60,
            capture_output=True,
        )
        yield client_ports
    finally:
        subprocess.run([str(STOP), str(data)], check=True, timeout=60)
    for port in client_ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def node_of(rc: RedisCluster, key: str) -> str:
    node = rc.get_node_from_key(key)
    assert node is not None
    return f"{node.host}:{node.port}"


def test_cluster_is_ok_and_tags_spread_over_shards(cluster: list[int]) -> None:
    for port in cluster:
        info = redis.Redis(port=port, decode_responses=True).cluster("info")
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_known_nodes"]) == 3
        assert int(info["cluster_slots_assigned"]) == 16384
        assert int(info["cluster_size"]) == 3

    rc = RedisCluster(host="127.0.0.1", port=cluster[0], decode_responses=True)
    try:
        assert {f"{n.host}:{n.port}" for n in rc.get_primaries()} == {
            f"127.0.0.1:{p}" for p in cluster
        }
        tags = [chr(c) for c in range(ord("a"), ord("z") + 1)]
        shards_used: set[str] = set()
        for tag in tags:
            keys = [f"sq:{{{tag}}}:{suffix}" for suffix in ("x", "lane:high", "job:1", "dead")]
            slots = {rc.keyslot(key) for key in keys}
            assert len(slots) == 1, f"keys of one queue span slots {slots}"
            assert len({node_of(rc, key) for key in keys}) == 1
            shards_used.add(node_of(rc, keys[0]))
            # A real write and read through the cluster client, on the shard that owns the tag.
            rc.set(keys[0], tag)
            owner = rc.get_node_from_key(keys[0])
            assert owner is not None
            assert redis.Redis(port=owner.port, decode_responses=True).get(keys[0]) == tag
        assert shards_used == {f"127.0.0.1:{p}" for p in cluster}
        # Two tags that hash to different shards really are stored apart.
        assert node_of(rc, "sq:{a}:x") != node_of(rc, "sq:{b}:x")
        # Multi-key commands work within one tag (what a Lua script per queue relies on).
        assert (
            rc.eval(
                "redis.call('SET', KEYS[1], '1'); return redis.call('INCR', KEYS[2])",
                2,
                "sq:{a}:x",
                "sq:{a}:y",
            )
            == 1
        )
    finally:
        rc.close()
