"""`streamq bench` runs the benchmark shipped in the package, from any directory (it used to
need a checkout's tests/benchmarks/). Its figures are printed, never asserted on."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import spawn


@pytest.mark.slow
def test_bench_runs_outside_a_checkout(tmp_path: Path) -> None:
    proc = spawn("bench", "--jobs", "200", "--quick", cwd=tmp_path)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert out.startswith("streamq core benchmark: 200 no-op jobs")
    for figure in ("enqueue, one by one:", "drain, 1 worker process", "latency at"):
        assert figure in out, out
    assert "error" not in err.lower(), err
