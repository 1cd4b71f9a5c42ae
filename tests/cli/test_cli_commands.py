"""The command tree itself: --help with an example everywhere, shell completion, and the
long-running commands (worker, serve) as real subprocesses."""

from __future__ import annotations

import argparse
import asyncio
import functools
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_support import ROOT, assert_one_line_error, cli, cli_env, spawn

from streamq import App
from streamq._embedded import free_port
from streamq.cli import build_parser


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    yield path, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from leaves(child, (*path, name))


COMMANDS = [path for path, _ in leaves(build_parser())]


def test_every_documented_command_exists() -> None:
    names = {" ".join(p) for p in COMMANDS}
    for expected in (
        "run", "serve", "worker", "redis", "enqueue", "bench", "tail", "pause", "resume",
        "dead replay", "dead purge", "completion",
        *(f"inspect {w}" for w in ("queues", "queue", "job", "lanes", "groups", "pending", "dead")),
    ):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "streamq")
def test_help_has_an_example(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    from streamq.cli import main

    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert "example: streamq" in out or 'example: eval "$(streamq' in out
    reads = {("tail",), ("pause",), ("resume",), ("dead", "replay"), ("dead", "purge")}
    if path in reads or (len(path) == 2 and path[0] == "inspect"):
        assert "--json" in out


def test_usage_errors_exit_2_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from streamq.cli import main

    assert main(["inspect", "queue"]) == 2  # missing QUEUE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0]
    assert main(["worker", "streamq.demo:app", "--concurrency", "many"]) == 2
    assert main(["nonsense"]) == 2
    capsys.readouterr()
    assert main(["--log-level", "chatty", "inspect", "queues"]) == 2
    assert capsys.readouterr().err.startswith("streamq: error: unknown log level 'chatty'")


@functools.cache
def bash_script() -> str:
    return subprocess.run(
        [*spawn_args(), "completion", "bash"], capture_output=True, text=True, check=True
    ).stdout


def complete(line: str, cwd: Path = ROOT, **env: str) -> list[str]:
    """What the generated bash completion offers for ``line`` (the cursor at its end)."""
    script = bash_script()
    words = line.split(" ")
    probe = (
        script
        + f"\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        + '_streamq_complete; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    # The script runs COMP_WORDS[0] (the streamq being completed); here, this checkout's.
    probe = probe.replace('"${COMP_WORDS[0]}"', f"{spawn_args()[0]} -m streamq.cli")
    got = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, check=True, cwd=cwd,
        env=cli_env(**env),
    )  # fmt: skip
    return got.stdout.split()


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@needs_bash
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("streamq ", {"inspect", "tail", "dead", "run", "serve", "worker"}),
        ("streamq insp", {"inspect"}),
        ("streamq inspect ", {"queues", "queue", "job", "lanes", "groups", "pending", "dead"}),
        ("streamq inspect pending q --", {"--lane", "--limit", "--json", "--redis-url"}),
        ("streamq dead ", {"replay", "purge"}),
        ("streamq dead replay q --a", {"--all"}),
        ("streamq --log-level INFO inspect ", {"queues", "lanes"}),
    ],
)
def test_bash_completion_completes(line: str, expected: set[str], tmp_path: Path) -> None:
    got = complete(line, cwd=tmp_path)
    assert expected <= set(got), got
    assert not (tmp_path / ".streamq").exists()  # no server was started to complete


@needs_bash
async def test_bash_completion_offers_queue_names(
    app_factory: Callable[..., App], uniq: Callable[[str], str], redis_url: str, tmp_path: Path
) -> None:
    queue = uniq("comp")
    await app_factory().register_queue(queue)
    offered = await asyncio.to_thread(
        complete, f"streamq inspect lanes {queue[:6]}", tmp_path, STREAMQ_REDIS_URL=redis_url
    )
    assert queue in offered
    offered = await asyncio.to_thread(
        complete, f"streamq --redis-url {redis_url} tail {queue[:6]}", tmp_path
    )
    assert queue in offered
    # After the queue, no queue names: the next argument is something else.
    offered = await asyncio.to_thread(
        complete, f"streamq inspect job {queue} {queue[:6]}", tmp_path, STREAMQ_REDIS_URL=redis_url
    )
    assert queue not in offered


def test_zsh_completion_wraps_the_bash_one(capsys: pytest.CaptureFixture[str]) -> None:
    from streamq.cli import main

    assert main(["completion", "zsh"]) == 0
    out = capsys.readouterr().out
    assert "bashcompinit" in out and "complete -o default -F _streamq_complete streamq" in out
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", "-c", out.split("bashcompinit\n", 1)[1]], check=True)


def spawn_args() -> list[str]:
    import sys

    return [sys.executable, "-m", "streamq.cli"]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status, resp.read()


def _wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if _get(url)[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


async def test_worker_runs_jobs_and_serves_metrics_on_its_port(
    app_factory: Callable[..., App], uniq: Callable[[str], str], redis_url: str
) -> None:
    queue = uniq("wrk")
    app = app_factory()
    port = free_port()
    proc = spawn(
        "worker", "tests.cli.cli_app:app", "--metrics-port", str(port), "--concurrency", "4",
        "--grace", "2", STREAMQ_REDIS_URL=redis_url, CLI_TEST_QUEUE=queue,
    )  # fmt: skip
    try:

        @app.task("echo", queue=queue)
        async def echo(ctx: Any, text: str) -> str:
            raise NotImplementedError  # declared for enqueue; cli_app's worker runs it

        handles = [await app.enqueue("echo", f"hi {i}") for i in range(5)]
        results = [await h.result(timeout=20) for h in handles]
        assert results == [f"HI {i}" for i in range(5)]
        status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        line = f'streamq_jobs_completed_total{{name="echo",queue="{queue}"}} 5.0'
        assert line in body.decode()
    finally:
        _, err = await asyncio.to_thread(_stop, proc)
    assert proc.returncode == 0, err


def test_worker_metrics_port_defaults_to_9108() -> None:
    args = build_parser().parse_args(["worker", "streamq.demo:app"])
    assert args.metrics_port == 9108


def test_worker_refuses_a_taken_metrics_port(redis_url: str) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = spawn(
            "worker", "tests.cli.cli_app:app", "--metrics-port", str(port),
            STREAMQ_REDIS_URL=redis_url,
        )  # fmt: skip
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith("streamq: error: cannot serve metrics")


async def test_serve_runs_the_http_api(
    app_factory: Callable[..., App], uniq: Callable[[str], str], redis_url: str
) -> None:
    queue = uniq("srv")
    app = app_factory()
    port = free_port()
    proc = spawn(  # port and app from the environment
        "serve", "--redis-url", redis_url,
        CLI_TEST_QUEUE=queue, STREAMQ_PORT=str(port), STREAMQ_APP="tests.cli.cli_app:app",
    )  # fmt: skip
    try:
        await asyncio.to_thread(_wait_http, f"http://127.0.0.1:{port}/healthz", proc)
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.post(
                f"http://127.0.0.1:{port}/v1/queues/{queue}/jobs",
                json={"name": "echo", "payload": "x", "id": "via-http"},
            )
        assert resp.status_code == 202, resp.text
        job = await app.job(queue, "via-http")
        assert job is not None and job.name == "echo" and job.payload == "x"
    finally:
        _, err = await asyncio.to_thread(_stop, proc)
    assert proc.returncode == 0, err


async def test_serve_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    r = await cli(capsys, "serve", "--app", "no_such_module_here:app")
    assert r.code == 2
    assert_one_line_error(r)
    r = await cli(capsys, "serve", "--app", "streamq.demo:Resize")
    assert r.code == 2 and "not a streamq App" in r.err


def test_serve_refuses_a_public_address_without_tokens(redis_url: str) -> None:
    proc = spawn(
        "serve", "--host", "0.0.0.0", "--port", str(free_port()), "--app", "streamq.demo:app",
        "--redis-url", redis_url, STREAMQ_API_TOKENS="",
    )  # fmt: skip
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith("streamq: error: refusing to listen on 0.0.0.0")


def test_root_is_the_repository() -> None:
    assert (ROOT / "streamq" / "cli" / "__init__.py").exists()
