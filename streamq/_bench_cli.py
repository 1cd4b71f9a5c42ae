"""``streamq bench``: runs the benchmarks kept in the checkout's ``tests/benchmarks/``."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path


def bench(args: argparse.Namespace) -> int:
    script = Path.cwd() / "tests" / "benchmarks" / "bench_core.py"
    if not script.exists():
        print(
            "streamq: error: run `streamq bench` from a streamq checkout "
            "(tests/benchmarks/bench_core.py not found)",
            file=sys.stderr,
        )
        return 1
    sys.path.insert(0, str(Path.cwd()))
    argv = ["--jobs", str(args.jobs)] + (["--quick"] if args.quick else [])
    module = runpy.run_path(str(script), run_name="streamq_bench")
    module["main"](argv)
    return 0
