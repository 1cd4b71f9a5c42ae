"""How the command line finds its application: the default spec ($STREAMQ_APP, then
[tool.streamq] in ./pyproject.toml, then the bundled demo), the typed contract an application
module follows, and --redis-url on a loaded app."""

from __future__ import annotations

import re
import secrets
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import ROOT, assert_one_line_error, cli

from streamq import App, ConfigurationError
from streamq.cli import UsageError, default_app_spec, load_app
from streamq.cli._contract import load_application


@pytest.fixture
def module_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Writes an application module (a name of its own) and returns its name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str) -> str:
        name = f"contract_app_{secrets.token_hex(4)}"
        body = "from streamq import App\n\napp = App('contract')\n" + textwrap.dedent(source)
        (tmp_path / f"{name}.py").write_text(body)
        return name

    return write


def test_the_default_app_comes_from_env_then_pyproject_then_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STREAMQ_APP", raising=False)
    assert default_app_spec(tmp_path) == "streamq.demo:app"
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert default_app_spec(tmp_path) == "streamq.demo:app"
    (tmp_path / "pyproject.toml").write_text("[tool.streamq]\napp = 'mine.tasks:app'\n")
    assert default_app_spec(tmp_path) == "mine.tasks:app"
    monkeypatch.chdir(tmp_path)
    assert default_app_spec() == "mine.tasks:app"  # the working directory's
    monkeypatch.setenv("STREAMQ_APP", "other.tasks:app")
    assert default_app_spec(tmp_path) == "other.tasks:app"


@pytest.mark.parametrize(
    ("text", "message"),
    [("[tool.streamq\n", "cannot read"), ("[tool.streamq]\napp = 3\n", "must be a")],
)
def test_a_broken_pyproject_is_a_usage_error(
    text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STREAMQ_APP", raising=False)
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(UsageError, match=message):
        default_app_spec(tmp_path)


def test_this_repository_runs_the_processors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMQ_APP", raising=False)
    assert default_app_spec(ROOT) == "processors.app:app"  # what `make run` runs
    assert isinstance(load_app("processors.app:app"), App)


def test_the_contract_reads_what_the_module_declares(module_in: Callable[[str], str]) -> None:
    name = module_in(
        """
        def http_operations():
            return []

        def example_job(app):
            return {"queue": "mail", "name": "send", "payload": {"to": app.name}}

        async def demo_workload(app):
            '''a mail a second

            More words.'''
        """
    )
    application = load_application(f"{name}:app")
    assert application.app.name == "contract"
    assert application.operations() == []
    assert application.example() == {
        "queue": "mail",
        "name": "send",
        "payload": {"to": "contract"},
    }
    assert application.workload_summary() == "a mail a second"


def test_a_module_declaring_nothing_but_its_app(module_in: Callable[[str], str]) -> None:
    application = load_application(f"{module_in('')}:app")
    assert application.operations() == []
    assert application.example() is None
    assert application.demo_workload is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("http_operations = []\n", "http_operations of .* must be a function"),
        ("example_job = 'send'\n", "example_job of .* must be a dict"),
        ("def demo_workload(app):\n    pass\n", "demo_workload of .* must be an async function"),
    ],
)
def test_a_declared_name_of_the_wrong_kind_is_refused(
    source: str, message: str, module_in: Callable[[str], str]
) -> None:
    with pytest.raises(UsageError, match=message):
        load_application(f"{module_in(source)}:app")


def test_an_example_job_without_a_queue_is_refused(module_in: Callable[[str], str]) -> None:
    name = module_in("example_job = {'name': 'x'}\n")
    application = load_application(f"{name}:app")
    with pytest.raises(UsageError, match=re.escape("not a {queue, name, payload} dict")):
        application.example()


async def test_serve_refuses_operations_the_server_does_not_know(
    module_in: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    name = module_in("def http_operations():\n    return ['GET /mine']\n")
    r = await cli(capsys, "serve", "--app", f"{name}:app")
    assert r.code == 2
    assert_one_line_error(r)
    assert "returned a str, not a server.Operation" in r.err


async def test_use_redis_url_points_a_loaded_app_elsewhere_until_it_connects(
    redis_url: str,
) -> None:
    app = App("elsewhere", redis_url="redis://127.0.0.1:1/0")
    app.use_redis_url(redis_url)
    try:
        assert await app.ping()
        assert app.url == redis_url
        with pytest.raises(ConfigurationError, match="already connected"):
            app.use_redis_url("redis://127.0.0.1:2/0")
    finally:
        await app.close()
