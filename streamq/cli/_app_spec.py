"""Which application a command works on: ``module[:attribute]`` specs, their default, and
the one loader every command (and the ops tests) uses."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import tomllib
from pathlib import Path

from streamq._app import App
from streamq.cli._output import UsageError

DEMO_SPEC = "streamq.demo:app"


def default_app_spec(directory: Path | None = None) -> str:
    """``$STREAMQ_APP``, else ``app`` of the ``[tool.streamq]`` table in ``./pyproject.toml``
    (``directory``, default the working directory), else the bundled demo. Raises UsageError
    for a pyproject.toml that is not TOML or names no string there."""
    spec = os.environ.get("STREAMQ_APP")
    if spec:
        return spec
    project = (directory or Path.cwd()) / "pyproject.toml"
    try:
        table = tomllib.loads(project.read_text()).get("tool", {}).get("streamq", {})
    except FileNotFoundError:
        return DEMO_SPEC
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read {project}: {exc}") from exc
    spec = table.get("app") if isinstance(table, dict) else None
    if spec is None:
        return DEMO_SPEC
    if not isinstance(spec, str) or not spec:
        raise UsageError(f"[tool.streamq] app in {project} must be a 'module:attribute' string")
    return spec


def cwd_on_path() -> None:
    """The working directory's modules are importable, as for ``python -m``."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def load_app(spec: str) -> App:
    """``module[:attribute]`` -> the App (attribute defaults to ``app``; it may also be a
    function returning one). Raises UsageError when it cannot be imported or is no App."""
    module_name, _, attr = spec.partition(":")
    cwd_on_path()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from exc
    app = getattr(module, attr or "app", None)
    if inspect.isfunction(app):  # a factory
        app = app()
    if not isinstance(app, App):
        raise UsageError(f"{spec!r} is not a streamq App")
    return app
