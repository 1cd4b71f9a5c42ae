"""The embedded server's life cycle: owned by the process that starts it (gone within seconds
of that process's SIGKILL, never holding its stdout), records trusted only while their server
lives, and deleted only by their server's owner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from streamq._embedded import Embedded, pid_alive, server_pid

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death watch is Linux's"
)
ROOT = Path(__file__).resolve().parents[2]

PRODUCER = textwrap.dedent(
    """
    import asyncio
    from streamq import App, Context

    app = App("producer")

    @app.task("hello", queue="readme-example")
    async def hello(ctx: Context, name: str) -> str:
        return f"hello {name}"

    async def main() -> None:
        await app.connect()
        await app.enqueue("hello", "world")
        print("enqueued", flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())
    """
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "STREAMQ_REDIS_URL"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _alive(pid: int) -> bool:
    # A zombie is dead too: it only waits for its parent to read its status.
    try:
        return pid_alive(pid) and "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def _record(directory: Path) -> dict[str, int]:
    data: dict[str, int] = json.loads((directory / ".streamq" / "server.json").read_text())
    return data


def test_a_sigkilled_producer_takes_its_server_along(tmp_path: Path) -> None:
    (tmp_path / "producer.py").write_text(PRODUCER)
    # Piped through `cat`, as `python producer.py | tail` would be: the pipeline must end when
    # the producer does, so the server must not hold the producer's stdout.
    pipeline = subprocess.Popen(
        f"{sys.executable} producer.py | cat",
        shell=True,
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert pipeline.stdout is not None
        assert pipeline.stdout.readline().strip() == "enqueued"
        record = _record(tmp_path)
        server, producer = record["pid"], record["owner"]
        assert server_pid(record["port"]) == server
        os.kill(producer, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _alive(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(server), "the embedded server outlived its SIGKILLed owner"
        assert pipeline.stdout.read() == ""
        assert pipeline.wait(timeout=5) is not None
    finally:
        if pipeline.poll() is None:
            os.killpg(pipeline.pid, signal.SIGKILL)
            pipeline.wait()
        if pipeline.stdout is not None:
            pipeline.stdout.close()
    # The server wrote its output beside its data, not to the producer's terminal.
    assert (tmp_path / ".streamq" / "valkey.out").exists()


def test_a_stale_record_is_not_reused_and_the_data_survives(tmp_path: Path) -> None:
    directory = tmp_path / ".streamq"
    first = Embedded(directory)
    url = first.attach_or_start()
    client = redis.Redis.from_url(url)
    client.set("kept", "yes")
    client.close()
    assert first.proc is not None
    old_pid = first.proc.pid
    first.proc.kill()  # a crash: the record stays behind, naming a dead server
    first.proc.wait()
    assert json.loads((directory / "server.json").read_text())["pid"] == old_pid
    assert Embedded(directory).running_url(wait=0) is None

    second = Embedded(directory)
    try:
        new_url = second.attach_or_start()
        assert second.owned and second.proc is not None and second.proc.pid != old_pid
        assert json.loads((directory / "server.json").read_text())["pid"] == second.proc.pid
        client = redis.Redis.from_url(new_url)
        assert client.get("kept") == b"yes"  # started from the AOF of the first
        client.close()
        # The first owner stopping now must not delete the record of the running second.
        first.stop()
        assert Embedded(directory).running_url(wait=0) == new_url
        # Nor does a process that only attached.
        attached = Embedded(directory)
        assert attached.attach_or_start() == new_url and not attached.owned
        attached.stop()
        assert Embedded(directory).running_url(wait=0) == new_url
    finally:
        second.stop()
    assert not (directory / "server.json").exists()
    assert Embedded(directory).running_url(wait=0) is None


def test_a_supervised_server_is_restarted_from_its_aof(tmp_path: Path) -> None:
    directory = tmp_path / ".streamq"
    owner = Embedded(directory)
    url = owner.attach_or_start(supervise=True)
    try:
        client = redis.Redis.from_url(url, socket_timeout=2)
        client.set("kept", "yes")
        client.execute_command("WAITAOF", 1, 0, 1000)
        assert owner.proc is not None
        killed = owner.proc.pid
        os.kill(killed, signal.SIGKILL)
        # Another process arriving meanwhile waits for the restart: same URL, no second server.
        assert Embedded(directory).attach_or_start() == url
        assert owner.proc.pid != killed
        assert client.get("kept") == b"yes"
        assert _record(tmp_path)["pid"] == owner.proc.pid
        client.close()
    finally:
        owner.stop()
    assert not (directory / "server.json").exists()
