"""The command line checks what the HTTP API checks: job names and payloads against the app,
the same bounds, and usage errors as one line with exit code 2 — before anything is written."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import assert_one_line_error, cli

from streamq import App


async def test_enqueue_with_app_refuses_an_unknown_name_naming_the_known_ones(
    app_factory: Callable[..., App],
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = uniq("parity")
    monkeypatch.setenv("CLI_TEST_QUEUE", queue)
    monkeypatch.delitem(__import__("sys").modules, "tests.cli.cli_app", raising=False)
    app = app_factory()
    r = await cli(capsys, "enqueue", queue, "mial", "--payload", '{"to": "a@b"}',
                  "--app", "tests.cli.cli_app", "--redis-url", redis_url)  # fmt: skip
    assert r.code == 2
    assert_one_line_error(r)
    assert "unknown job 'mial'" in r.err and "known: echo, mail" in r.err
    assert queue not in await app.queue_names()


async def test_enqueue_with_app_refuses_a_bad_payload_naming_the_field(
    app_factory: Callable[..., App],
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = uniq("parity")
    monkeypatch.setenv("CLI_TEST_QUEUE", queue)
    monkeypatch.delitem(__import__("sys").modules, "tests.cli.cli_app", raising=False)
    app = app_factory()
    r = await cli(capsys, "enqueue", queue, "mail", "--payload", '{"to": "a@b", "copies": "x"}',
                  "--app", "tests.cli.cli_app", "--redis-url", redis_url)  # fmt: skip
    assert r.code == 2
    assert_one_line_error(r)
    assert "$.copies" in r.err
    assert (await app.stats(queue)).waiting == 0
    r = await cli(capsys, "enqueue", queue, "mail", "--payload", '{"to": "a@b", "copies": 2}',
                  "--app", "tests.cli.cli_app", "--id", "ok-1", "--redis-url", redis_url)  # fmt: skip
    assert r.code == 0, r.err
    job = await app.job(queue, "ok-1")
    assert job is not None and job.payload == {"to": "a@b", "copies": 2}


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("enqueue", "q", "mail", "--delay", "-5"), "argument --delay: expected 0 to"),
        (("enqueue", "q", "mail", "--delay", "soon"), "argument --delay: expected seconds"),
        (("enqueue", "q", "mail", "--priority", "urgent"), "argument --priority: expected one"),
        (("enqueue", "q", "mail", "--priority", "11"), "argument --priority: expected one"),
        (("tail", "q", "--since", "garbage"), "argument --since: expected 'start', '$'"),
        (("dead", "replay", "q"), "say which dead letters to replay: job ids or entry ids"),
        (("dead", "purge", "q", "x", "--all"), "pass dead-letter ids or --all, not both"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
async def test_usage_errors_are_one_line_and_exit_2(
    argv: tuple[str, ...],
    says: str,
    uniq: Callable[[str], str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    app_factory: Callable[..., App],
) -> None:
    queue = uniq("parity")
    app = app_factory()
    await app.register_queue(queue)  # a known queue: only the arguments are wrong
    argv = tuple(queue if a == "q" else a for a in argv)
    r = await cli(capsys, *argv, "--redis-url", redis_url)
    assert r.code == 2, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], r.err
    assert "Traceback" not in r.err and "ResponseError" not in r.err
    assert (await app.stats(queue)).waiting == 0
