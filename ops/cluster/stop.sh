#!/usr/bin/env bash
# Stop every cluster node started by start.sh under DATA_DIR (data stays for the next start).
#   ops/cluster/stop.sh DATA_DIR
set -euo pipefail
source "$(dirname "$0")/python.sh"
if [ $# -ne 1 ]; then
    echo "usage: $0 DATA_DIR" >&2
    exit 2
fi
exec "$python" "$here/make_cluster.py" stop --dir "$1"
