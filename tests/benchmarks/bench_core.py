"""Core broker benchmark: no-op jobs, one producer, one worker process.

    make bench            (or: streamq bench [--jobs N] [--quick])
    .venv/bin/python tests/benchmarks/bench_core.py [--jobs N] [--quick]

The benchmark ships in the package (``streamq.cli._bench``) so that ``streamq bench`` runs from
any directory; this file runs the same code. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import sys

from streamq.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
