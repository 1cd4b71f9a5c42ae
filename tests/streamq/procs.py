"""Worker subprocesses for crash tests."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from streamq.cli._bench import worker_command

ROOT = Path(__file__).resolve().parents[2]


def spawn_worker(
    url: str,
    queue: str,
    *,
    name: str = "worker",
    concurrency: int = 20,
    env: dict[str, str] | None = None,
    app: str = "tests.streamq.crash_app:app",
) -> subprocess.Popen[bytes]:
    environment = dict(
        os.environ, STREAMQ_REDIS_URL=url, CRASH_QUEUE=queue, WORKER_NAME=name, **(env or {})
    )
    return subprocess.Popen(
        worker_command(app, concurrency, "--grace", "2"),
        cwd=ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
