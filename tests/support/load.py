"""A bounded CPU load for tests whose promise must hold on a busy machine (a rate limit owed to
an external service): busy processes on every core, stopped when the block ends and, whatever
happens to the test, after ``seconds`` at most."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

__all__ = ["cpu_burn"]

# Spins until its deadline: the bound holds even if the test process is killed.
_SPIN = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass\n"


@contextlib.contextmanager
def cpu_burn(seconds: float = 120.0, processes: int | None = None) -> Iterator[int]:
    """Runs ``processes`` (default: one per core) busy loops for the block, at most ``seconds``;
    yields how many run."""
    count = processes or os.cpu_count() or 2
    procs = [
        subprocess.Popen([sys.executable, "-c", _SPIN, str(seconds)], stdin=subprocess.DEVNULL)
        for _ in range(count)
    ]
    try:
        yield count
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
