"""How the command line shows things: aligned tables (rich) for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class UsageError(Exception):
    """Bad input from the command line (unknown queue, malformed id): one line, exit code 2."""


class CliError(Exception):
    """The operation failed (not found, Redis refused): one line, exit code 1."""


def console() -> Console:
    # Built per call: tests swap sys.stdout (capsys) between commands. Piped output is not
    # folded to 80 columns: tables stay one line per row for grep and less.
    width = None if sys.stdout.isatty() else 400
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=width)


def err_console() -> Console:
    return Console(file=sys.stderr, highlight=False)


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def emit_json(value: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(to_builtins(value), ensure_ascii=False, sort_keys=False) + "\n")
    sys.stdout.flush()


def print_refusals(refused: dict[str, str], missing: Sequence[str], past: str) -> int:
    """Prints the ids an action on many jobs left alone (refused: id -> its state) and returns
    the command's exit status: 1 if any was."""
    for job_id, state in refused.items():
        print(f"  {job_id}: not {past}, it is {state}")
    if missing:
        print(f"  no such job: {', '.join(missing)}")
    return 1 if refused or missing else 0


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """An aligned table on stdout; numeric-looking columns are right-aligned."""
    t = Table(
        title=title, title_justify="left", header_style="bold", show_edge=False, pad_edge=False
    )
    for i, name in enumerate(columns):
        numeric = bool(rows) and all(
            isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows
        )
        t.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        t.add_row(*(cell(v) for v in row))
    console().print(t)


def fields(title: str | None, pairs: Sequence[tuple[str, Any]]) -> None:
    """Key/value lines, keys aligned."""
    t = Table(title=title, title_justify="left", show_header=False, show_edge=False, box=None)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for key, value in pairs:
        t.add_row(key, cell(value))
    console().print(t)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def age(seconds: float | None) -> str:
    """A duration as people read it: 850ms, 12.3s, 4m05s, 2h10m, 3d04h."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def timestamp(epoch: float | None) -> str:
    if not epoch:
        return "-"
    ms = int(epoch * 1000) % 1000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) + f".{ms:03d}"


@contextmanager
def progress(description: str, total: int, *, enabled: bool) -> Iterator[Progress]:
    """A progress bar on stderr, shown only on a terminal (never in --json output)."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
        disable=not enabled or not sys.stderr.isatty(),
    )
    with bar:
        bar.add_task(description, total=total)
        yield bar
