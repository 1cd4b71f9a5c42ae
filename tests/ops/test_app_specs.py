"""Every application spec the ops files name (compose, the Dockerfile, the systemd units, the
operations guide's code) loads through the loader the `streamq` command line uses, and is an
App: a default naming a module that does not exist would stop every worker from starting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ops_support import OPS, REPO

from streamq import App
from streamq.cli import UsageError, load_app

SPEC = r"([A-Za-z_][\w.]*:[A-Za-z_]\w*)"
# Where a spec stands: `--app SPEC`, `worker SPEC` (a command line or a compose list item),
# STREAMQ_APP=SPEC / STREAMQ_APP: SPEC, ${STREAMQ_APP:-SPEC}, or the guide's "(default `SPEC`)".
PLACES = [
    re.compile(r"--app(?:[ \t]+|=)[\"']?" + SPEC),
    re.compile(r"\bworker[\"']?(?:[ \t]+|[ \t]*\n[ \t]*-[ \t]*)[\"']?" + SPEC),
    re.compile(r"\bSTREAMQ_APP[ \t]*[=:][ \t]*[\"']?" + SPEC),
    re.compile(r"\$\{STREAMQ_APP:-" + SPEC + r"\}"),
    re.compile(r"STREAMQ_APP`.*\(default `" + SPEC + r"`\)"),
]
OPS_FILES = [
    OPS / "compose.yaml",
    OPS / "Dockerfile",
    *sorted((OPS / "systemd").glob("*.service")),
    REPO / "docs" / "operations.md",
]


def code_of(path: Path) -> str:
    """What an operator runs: for Markdown, its code blocks and inline code (the table of
    variables included); other files whole, comments too (the Dockerfile's usage lines)."""
    text = path.read_text()
    if path.suffix != ".md":
        return text
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)
    table = [line for line in text.splitlines() if line.startswith("|")]
    return "\n".join([*blocks, *table, *re.findall(r"`([^`\n]+)`", text)])


def app_specs(text: str) -> set[str]:
    return {match for place in PLACES for match in place.findall(text)}


def test_the_extraction_finds_specs_where_ops_files_put_them() -> None:
    text = """
      command: ["serve", "--app", "${STREAMQ_APP:-a.b:app}"]
      command:
        - worker
        - "${STREAMQ_APP:-c.d:app}"
    ENV STREAMQ_APP=e.f:app
    ExecStart=/opt/streamq/bin/streamq worker g.h:app --concurrency 50
      - worker
      - k.l:app
    `streamq worker`
    `host:port`
    | `STREAMQ_APP` | `module:attribute` of the App (default `i.j:app`) |
    """
    assert app_specs(text) == {"a.b:app", "c.d:app", "e.f:app", "g.h:app", "i.j:app", "k.l:app"}


@pytest.mark.parametrize("path", OPS_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_app_spec_of_the_ops_files_loads(path: Path) -> None:
    specs = app_specs(code_of(path))
    assert specs, f"{path.relative_to(REPO)} names no application"
    for spec in sorted(specs):
        try:
            app = load_app(spec)
        except UsageError as exc:
            pytest.fail(f"{path.relative_to(REPO)} names {spec!r}, which does not load: {exc}")
        assert isinstance(app, App), spec


@pytest.mark.parametrize("path", OPS_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_ops_files_default_to_the_application(path: Path) -> None:
    assert "processors.app:app" in app_specs(code_of(path))


def test_the_loader_refuses_a_module_that_does_not_exist() -> None:
    with pytest.raises(UsageError, match=re.escape("cannot import 'processors.tasks'")):
        load_app("processors.tasks:app")
