"""The README's newcomer path, as a newcomer would follow it: its example module in a fresh
directory, its worker command, then its producer; the producer prints the annotated type."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_support import ROOT, cli_env

README = (ROOT / "README.md").read_text()


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    [example] = [b for b in blocks if b.startswith("# analytics/tasks.py")]
    return example


def _processes_in(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(directory):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_the_readme_example_uses_its_own_queue() -> None:
    example = _example()
    assert 'queue="readme-wallets"' in example
    assert "wallet-operations" not in example
    assert "-> SyncResult:" in example


def test_the_readme_worker_and_producer_run_as_written(tmp_path: Path) -> None:
    (tmp_path / "analytics").mkdir()
    (tmp_path / "analytics" / "tasks.py").write_text(_example())
    assert "streamq worker analytics.tasks:app --concurrency 50" in README
    assert "python -m analytics.tasks" in README
    env = cli_env()
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "streamq.cli", "worker", "analytics.tasks:app",
             "--concurrency", "50", "--metrics-port", "0"],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "serving readme-wallets" not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        producer = subprocess.run(
            [sys.executable, "-m", "analytics.tasks"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert producer.returncode == 0, producer.stderr
        assert producer.stdout.strip() == "SyncResult(signatures=42)"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert worker.returncode == 0, log.read_text()
    # The worker owned the embedded server: it stopped with it.
    time.sleep(0.2)
    assert _processes_in(tmp_path) == []
    # The README says how to reach `streamq`.
    assert ". .venv/bin/activate" in README and ".venv/bin/streamq" in README
