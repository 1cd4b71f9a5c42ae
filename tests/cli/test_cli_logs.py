"""While Redis is unreachable the long-running commands log a few lines, not a flood."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli_support import cli_env

from streamq._embedded import free_port, start_server
from streamq.cli._logs import ThrottleUnreachable


def _record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("streamq._fetch", level, __file__, 1, message, None, None)


def test_one_unreachable_warning_per_interval_counting_the_held_back() -> None:
    now = [100.0]
    throttle = ThrottleUnreachable(interval=5.0, clock=lambda: now[0])
    refused = "fetching from q failed: Error 111 connecting to 127.0.0.1:6379. Connection refused."
    assert throttle.filter(_record(refused))
    passed = 0
    for _ in range(50):  # 50 warnings within one second
        now[0] += 0.02
        passed += throttle.filter(_record(refused))
    assert passed == 0
    # Other lines are never held back, whatever their level.
    assert throttle.filter(_record("job dead: Fatal: INVALID_ADDRESS"))
    assert throttle.filter(_record("Error 111 connecting to 127.0.0.1", logging.INFO))
    now[0] += 5.0
    record = _record(refused)
    assert throttle.filter(record)
    assert record.getMessage().endswith("(and 50 more such warnings held back)")


def test_a_worker_whose_redis_is_gone_logs_a_few_lines(tmp_path: Path) -> None:
    directory = Path(tempfile.mkdtemp(prefix="streamq-gone-"))
    port = free_port()
    server = start_server(directory, port)
    log = tmp_path / "worker.log"
    try:
        with log.open("w") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streamq.cli", "worker", "tests.cli.cli_app:app",
                 "--metrics-port", "0", "--redis-url", f"redis://127.0.0.1:{port}/0"],
                env=cli_env(CLI_TEST_QUEUE=f"gone-{os.getpid()}"),
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while "serving" not in log.read_text():
            assert time.monotonic() < deadline and worker.poll() is None, log.read_text()
            time.sleep(0.05)
        server.kill()
        server.wait()
        before = len(log.read_text().splitlines())
        time.sleep(6)
        during = log.read_text().splitlines()[before:]
        # The next line let through counts those held back (when it comes depends on the
        # worker's backoff; within a few intervals).
        deadline = time.monotonic() + 15
        while "more such warnings held back" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        shutil.rmtree(directory, ignore_errors=True)
    # Unthrottled, this worker writes about three lines a second; throttled, one per 5 s.
    unreachable = [line for line in during if "Error 111" in line or "unavailable" in line]
    assert 1 <= len(unreachable) <= 2, "\n".join(during)
