"""`streamq run` end to end, as `make run` starts it: in a fresh directory, with the embedded
Redis, the HTTP server, a worker and the demo workload; nothing is left running after it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from cli_support import spawn


def processes_in(directory: Path) -> list[int]:
    """Pids working in ``directory`` or below: the run, everything it started, and the
    embedded valkey-server (which works in ./.streamq)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(directory):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class Run:
    """A `streamq run` subprocess whose output is collected as it comes."""

    def __init__(self, directory: Path, *argv: str) -> None:
        # stderr to a file: the children write there too, and an unread pipe would fill up.
        self.err_path = directory.parent / f"{directory.name}-stderr.txt"
        with self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [*spawn_prefix(), "run", "--port", "0", "--status-every", "1", *argv],
                cwd=directory,
                env=_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self.directory = directory
        self.lines: list[str] = []
        self.err = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.strip().startswith(prefix):
                    return line
            assert self.proc.poll() is None, self.output()
            time.sleep(0.05)
        raise AssertionError(f"no line starting {prefix!r}:\n{self.output()}")

    def finish(self, timeout: float = 40) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in processes_in(self.directory):  # children run in their own sessions
                os.kill(pid, signal.SIGKILL)
            raise
        self.reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.err = self.err_path.read_text()
        return code

    def output(self) -> str:
        return "\n".join(self.lines) + "\n--- stderr ---\n" + self.err


def inspect_queues(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [*spawn_prefix(), "inspect", "queues", "--json"],
        cwd=directory,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    data: list[dict[str, object]] = json.loads(result.stdout)
    return data


def spawn_prefix() -> list[str]:
    import sys

    return [sys.executable, "-m", "streamq.cli"]


def _env() -> dict[str, str]:
    from cli_support import cli_env

    return cli_env()


def test_run_serves_processes_the_demo_and_cleans_up(tmp_path: Path) -> None:
    run = Run(tmp_path, "--duration", "8")
    try:
        run.wait_line("Stop")
        assert len(processes_in(tmp_path)) >= 4  # run, valkey, server, a worker
        api = run.wait_line("API").split()[1].removesuffix("/v1/queues")
        for prefix in ("Docs", "Metrics", "Try", "Look"):
            run.wait_line(prefix)
        record = json.loads((tmp_path / ".streamq" / "server.json").read_text())
        valkey_pid = int(record["pid"])

        health = httpx.get(f"{api}/healthz", timeout=5)
        assert health.status_code == 200
        # Another command started in the same directory sees the live system.
        completed = 0
        deadline = time.monotonic() + 6
        while completed == 0 and time.monotonic() < deadline:
            queues = inspect_queues(tmp_path)
            completed = sum(int(q["totals"].get("completed", 0)) for q in queues)
            time.sleep(0.3)
        assert completed > 0, run.output()
        names = {q["queue"] for q in queues}
        listed = httpx.get(f"{api}/v1/queues", timeout=5).json()
        assert names <= {q["name"] for q in listed["queues"]}
        run.wait_line("[")  # a status line
    finally:
        code = run.finish()
    out = run.output()
    assert code == 0, out
    assert "streamq inspect queues" in out and "streamq tail" in out and "curl" in out
    assert "embedded Redis stopped" in out
    assert "Traceback" not in out
    time.sleep(0.2)
    assert processes_in(tmp_path) == []
    try:
        os.kill(valkey_pid, 0)
        raise AssertionError("the embedded valkey-server is still running")
    except ProcessLookupError:
        pass
    assert not (tmp_path / ".streamq" / "server.json").exists()


def test_run_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    run = Run(tmp_path, "--workers", "2", "--app", "streamq.demo:app")
    try:
        run.wait_line("Stop")
        assert len(processes_in(tmp_path)) >= 5  # run, valkey, server, 2 workers
        run.wait_line("demo workload: a light stream")
        deadline = time.monotonic() + 15
        demo: dict[str, Any] = {}
        while time.monotonic() < deadline:
            demo = {str(q["queue"]): q for q in inspect_queues(tmp_path)}.get("demo", {})
            if demo.get("totals", {}).get("completed", 0) > 0 and demo.get("dead", 0) > 0:
                break  # resized images, and mails to bad addresses in the dead letters
            time.sleep(0.3)
        assert demo["totals"]["completed"] > 0 and demo["dead"] > 0, run.output()
        assert demo["workers"] == 2
    finally:
        run.proc.send_signal(signal.SIGTERM)
        code = run.finish()
    assert code == 0, run.output()
    time.sleep(0.2)
    assert processes_in(tmp_path) == []


def test_run_refuses_an_unknown_app(tmp_path: Path) -> None:
    proc = spawn("run", "--app", "no_such_app_module:app", "--duration", "1", cwd=tmp_path)
    out, err = proc.communicate(timeout=30)
    assert out == ""
    assert proc.returncode == 2
    assert err.strip().splitlines() == [err.strip().splitlines()[-1]]
    assert err.startswith("streamq: error: cannot import")
    assert not (tmp_path / ".streamq").exists()  # nothing was started


def test_run_says_when_redis_does_not_answer(tmp_path: Path) -> None:
    proc = spawn("run", "--redis-url", "redis://127.0.0.1:1/0", "--duration", "5", cwd=tmp_path)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == ""
    assert err.strip().splitlines()[-1].startswith("streamq: error: Redis at redis://127.0.0.1:1/0")
    assert "Traceback" not in err
    assert processes_in(tmp_path) == []


def test_redis_runs_the_embedded_server_for_the_directory(tmp_path: Path) -> None:
    first = spawn("redis", cwd=tmp_path)
    try:
        assert first.stdout is not None
        line = first.stdout.readline()
        assert line.startswith("embedded valkey at redis://127.0.0.1:"), line
        url = line.split()[3]
        # A second one attaches instead of starting another; other commands see the same server.
        second = spawn("redis", cwd=tmp_path)
        out, _ = second.communicate(timeout=20)
        assert second.returncode == 0 and url in out and "already runs" in out
        assert inspect_queues(tmp_path) == []
        pid = int(json.loads((tmp_path / ".streamq" / "server.json").read_text())["pid"])
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=20)
    assert first.returncode == 0, err
    try:
        os.kill(pid, 0)
        raise AssertionError("valkey-server outlived `streamq redis`")
    except ProcessLookupError:
        pass
