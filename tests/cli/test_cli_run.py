"""`streamq run` end to end, as `make run` starts it: in a fresh directory, with the embedded
Redis, the HTTP server, a worker and the demo workload; nothing is left running after it."""

from __future__ import annotations

import contextlib
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

    def __init__(self, directory: Path, *argv: str, **env: str) -> None:
        # stderr to a file: the children write there too, and an unread pipe would fill up.
        self.err_path = directory.parent / f"{directory.name}-stderr.txt"
        with self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [*spawn_prefix(), "run", "--port", "0", "--status-every", "1", *argv],
                cwd=directory,
                env={**_env(), **env},
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
    run = Run(tmp_path, "--processes", "2", "--app", "streamq.demo:app")
    try:
        run.wait_line("Stop")
        # run, valkey, server, the workers' supervisor (its 2 workers: the heartbeats below)
        assert len(processes_in(tmp_path)) >= 4
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


def _record_pid(directory: Path) -> int:
    return int(json.loads((directory / ".streamq" / "server.json").read_text())["pid"])


def test_run_restarts_a_killed_redis_and_loses_no_acknowledged_job(tmp_path: Path) -> None:
    queue = f"supervised-{os.getpid()}"
    run = Run(tmp_path, "--no-demo", "--app", "tests.cli.cli_app:app", CLI_TEST_QUEUE=queue)
    acknowledged: list[str] = []
    stop = threading.Event()

    def produce(api: str) -> None:
        # Jobs sent all along, through the outage; only those answered 2xx count as acknowledged.
        with httpx.Client(base_url=api, timeout=2) as client:
            i = 0
            while not stop.is_set():
                job_id = f"j-{i}"
                i += 1
                with contextlib.suppress(httpx.HTTPError):
                    r = client.post(
                        f"/v1/queues/{queue}/jobs",
                        json={"name": "echo", "payload": f"n{i}", "id": job_id},
                    )
                    if r.status_code in (200, 202):
                        acknowledged.append(job_id)
                time.sleep(0.01)

    try:
        api = run.wait_line("API").split()[1].removesuffix("/v1/queues")
        run.wait_line("Stop")
        producer = threading.Thread(target=produce, args=(api,), daemon=True)
        producer.start()
        time.sleep(1.5)
        killed = _record_pid(tmp_path)
        lines_before = len(run.err_path.read_text().splitlines())
        os.kill(killed, signal.SIGKILL)
        down = time.monotonic()
        ready_after = None
        while time.monotonic() - down < 10:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{api}/readyz", timeout=1).status_code == 200 and (
                    _record_pid(tmp_path) != killed
                ):
                    ready_after = time.monotonic() - down
                    break
            time.sleep(0.1)
        assert ready_after is not None, run.output()
        time.sleep(3)  # the children's reconnect warnings, if any, come in these seconds
        window = time.monotonic() - down
        stop.set()
        producer.join(5)
        logged = run.err_path.read_text().splitlines()[lines_before:]
        restarts = [line for line in logged if "restarted it from its AOF" in line]
        assert len(restarts) == 1, "\n".join(logged)
        assert len(logged) <= 3 * window, "\n".join(logged)
        assert len(acknowledged) > 100
        # Every acknowledged job is there and runs to completion.
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=api, timeout=5) as client:
            for job_id in acknowledged:
                while True:
                    r = client.get(f"/v1/queues/{queue}/jobs/{job_id}")
                    assert r.status_code == 200, (job_id, r.text)
                    if r.json()["state"] == "completed":
                        break
                    assert time.monotonic() < deadline, (job_id, r.json())
                    time.sleep(0.1)
    finally:
        stop.set()
        run.proc.send_signal(signal.SIGTERM)
        code = run.finish()
    assert code == 0, run.output()
    print(f"readyz 200 again {ready_after:.2f} s after SIGKILL; {len(logged)} log lines in "
          f"{window:.1f} s; {len(acknowledged)} acknowledged jobs all completed")  # fmt: skip
    time.sleep(0.2)
    assert processes_in(tmp_path) == []


def test_a_second_run_in_the_same_directory_is_refused(tmp_path: Path) -> None:
    run = Run(tmp_path, "--no-demo")
    try:
        run.wait_line("Stop")
        redis_url = run.wait_line("Redis").split()[1]
        second = spawn("run", "--port", "0", "--no-demo", cwd=tmp_path)
        out, err = second.communicate(timeout=30)
        assert second.returncode == 1 and out == ""
        assert err.strip().splitlines() == [
            f"streamq: error: streamq run is already running for ./.streamq "
            f"(pid {run.proc.pid}, redis {redis_url}, api {err.split('api ')[1].split(')')[0]}); "
            "stop it first, or run in another directory"
        ]
        assert "api http://127.0.0.1:" in err
        # The first one is untouched: its server record and its server still there.
        assert _record_pid(tmp_path) > 0 and run.proc.poll() is None
        assert [q["queue"] for q in inspect_queues(tmp_path)] == ["demo"]
    finally:
        run.proc.send_signal(signal.SIGTERM)
        code = run.finish()
    assert code == 0, run.output()


def test_the_banner_is_shown_again_on_sigusr1(tmp_path: Path) -> None:
    run = Run(tmp_path, "--no-demo")
    try:
        run.wait_line("Again").endswith("(this text)")
        shown = sum(1 for line in run.lines if line.strip().startswith("Look"))
        assert shown == 1
        run.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while sum(1 for line in run.lines if line.strip().startswith("Look")) < 2:
            assert time.monotonic() < deadline, run.output()
            time.sleep(0.05)
    finally:
        run.proc.send_signal(signal.SIGTERM)
        code = run.finish()
    assert code == 0, run.output()


def test_a_worker_beside_run_falls_back_from_the_taken_metrics_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            busy.bind(("127.0.0.1", 9108))
        except OSError:
            pass  # taken already (another run on this machine): just as good
        else:
            busy.listen()
        run = Run(tmp_path, "--no-demo", "--app", "tests.cli.cli_app:app")
        try:
            run.wait_line("Stop")
            worker = spawn("worker", "tests.cli.cli_app:app", cwd=tmp_path)
            try:
                assert worker.stderr is not None
                line = ""
                deadline = time.monotonic() + 20
                while "metrics on" not in line and time.monotonic() < deadline:
                    line = worker.stderr.readline()
                assert "metrics port 9108 is taken" in line, line
                url = line.split("metrics on ")[1].split()[0]
                assert httpx.get(url, timeout=5).status_code == 200
                # Stopped once it serves: a SIGTERM before its handler is installed kills it.
                while "serving" not in line and time.monotonic() < deadline:
                    line = worker.stderr.readline()
                assert "serving" in line, line
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.communicate(timeout=30)
            assert worker.returncode == 0
        finally:
            run.proc.send_signal(signal.SIGTERM)
            code = run.finish()
    assert code == 0, run.output()


def test_a_sigkilled_run_leaves_nothing_running(tmp_path: Path) -> None:
    run = Run(tmp_path)
    try:
        run.wait_line("Stop")
        assert len(processes_in(tmp_path)) >= 4  # run, valkey, server, a worker
        run.proc.kill()
        deadline = time.monotonic() + 5
        while [p for p in processes_in(tmp_path) if _running(p)] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p for p in processes_in(tmp_path) if _running(p)] == []
    finally:
        run.finish()


def _running(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_the_banner_is_shown_again_on_enter_at_a_terminal(tmp_path: Path) -> None:
    import pty

    master, slave = pty.openpty()
    err = (tmp_path.parent / f"{tmp_path.name}-stderr.txt").open("w")
    proc = subprocess.Popen(
        [*spawn_prefix(), "run", "--port", "0", "--no-demo", "--status-every", "60"],
        cwd=tmp_path, env=_env(), stdin=slave, stdout=subprocess.PIPE, stderr=err, text=True,
    )  # fmt: skip
    os.close(slave)
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        while not any(line.strip().startswith("Stop") for line in seen):
            seen.append(proc.stdout.readline())
            assert seen[-1] != "", seen
        assert any("press Enter" in line for line in seen), seen
        os.write(master, b"\n")
        again = [proc.stdout.readline() for _ in range(5)]  # blank, title, Dashboard, Redis
        assert any(line.strip().startswith("Redis") for line in again), again
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=40)
        os.close(master)
        err.close()
    assert proc.returncode == 0
