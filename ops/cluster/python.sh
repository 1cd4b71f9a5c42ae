# Sourced by start.sh and stop.sh: $here (this folder) and $python, the Python that runs
# make_cluster.py ($PYTHON, else the repo's .venv).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-$(cd "$here/../.." && pwd)/.venv/bin/python}"
