"""Running the CLI in tests: in-process through ``streamq.cli.main`` (in a thread, since it
runs its own event loop) or as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from streamq.cli import main

ROOT = Path(__file__).resolve().parents[2]


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """``streamq argv...`` in-process; returns exit code and captured output."""
    capsys.readouterr()
    code = await anyio.to_thread.run_sync(main, list(argv))
    out, err = capsys.readouterr()
    return Result(code, out, err)


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "STREAMQ_REDIS_URL"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def spawn(*argv: str, cwd: Path = ROOT, **env: str) -> subprocess.Popen[str]:
    """``streamq argv...`` as a subprocess, output piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "streamq.cli", *argv],
        cwd=cwd,
        env=cli_env(**env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_one_line_error(result: Result) -> None:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("streamq: error: "), result.err
    assert "Traceback" not in result.err
