"""Every `streamq ...` command docs/operations.md tells an operator to type is one the CLI
accepts. Commands the CLI does not have yet are skipped by name; once they exist, a mismatch
between the guide and the parser fails here."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex

import pytest
from ops_support import REPO

DOC = REPO / "docs" / "operations.md"
PLACEHOLDERS = {"Q": "wallet-operations", "JOB_ID": "job-1"}


def documented_commands() -> list[str]:
    text = DOC.read_text()
    commands = re.findall(r"`(streamq [^`]+)`", text)
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif in_code and line.startswith("streamq "):
            commands.append(line.split("#", 1)[0].strip())
    # "streamq worker ..." is prose for "a worker command line", not something to type.
    return sorted({c for c in commands if "..." not in c})


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_guide_documents_the_recovery_commands() -> None:
    commands = documented_commands()
    for expected in (
        "streamq dead replay wallet-operations --all",
        "streamq pause wallet-operations",
        "streamq resume wallet-operations",
    ):
        assert expected in commands


@pytest.mark.parametrize("command", documented_commands())
def test_documented_command_parses(command: str) -> None:
    from streamq import cli

    argv = [PLACEHOLDERS.get(word, word) for word in shlex.split(command)[1:]]
    parser = cli.build_parser()
    if argv[0] not in subcommands(parser):
        pytest.skip(f"`streamq {argv[0]}` is not in the CLI yet")
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"`{command}` is refused by the CLI: {errors.getvalue().strip()} ({exc})")
