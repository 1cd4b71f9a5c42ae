"""Read and operate commands never start a server: in a directory where none runs (and with no
STREAMQ_REDIS_URL), each exits non-zero with one line and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import cli_env

NO_SERVER = (
    "streamq: error: no streamq server is running for ./.streamq — start one with "
    "`streamq run` or set STREAMQ_REDIS_URL"
)

COMMANDS = [
    ("inspect", "queues"),
    ("inspect", "queue", "q"),
    ("inspect", "job", "q", "some-id"),
    ("inspect", "lanes", "q"),
    ("inspect", "groups", "q"),
    ("inspect", "pending", "q"),
    ("inspect", "dead", "q"),
    ("tail", "q", "--since", "start"),
    ("enqueue", "q", "mail", "--payload", '{"to": "a@b"}'),
    ("enqueue", "cli-test", "mail", "--payload", '{"to": "a@b"}', "--app", "tests.cli.cli_app"),
    ("dead", "replay", "q", "--all"),
    ("dead", "purge", "q", "some-id"),
    ("pause", "q"),
    ("resume", "q"),
]


def processes_in(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(directory):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_command_without_a_server_says_so_and_creates_nothing(
    argv: tuple[str, ...], tmp_path: Path
) -> None:
    env = cli_env()
    env.pop("STREAMQ_REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "streamq.cli", *argv],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [NO_SERVER]
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no .streamq/
    assert processes_in(tmp_path) == []


def test_a_stale_record_is_not_a_running_server(tmp_path: Path) -> None:
    """A server.json left by a killed server (its pid gone, or its port now someone else's)
    is not trusted: the command says no server runs, and leaves the record alone."""
    import socket

    record = tmp_path / ".streamq" / "server.json"
    record.parent.mkdir()
    with socket.socket() as other:  # a port that is listening, but not a streamq server
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        text = f'{{"port": {port}, "pid": {os.getpid()}, "owner": 1, "supervised": false}}'
        record.write_text(text)
        env = cli_env()
        env.pop("STREAMQ_REDIS_URL", None)
        result = subprocess.run(
            [sys.executable, "-m", "streamq.cli", "inspect", "queues"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert result.returncode == 1 and result.stderr.splitlines() == [NO_SERVER]
    assert record.read_text() == text
    assert sorted(p.name for p in record.parent.iterdir()) == ["server.json"]
