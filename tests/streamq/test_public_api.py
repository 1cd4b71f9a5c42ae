"""The public API: everything public is exported, __all__ is sorted, streamq stands alone."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import streamq

PACKAGE = Path(streamq.__file__).parent


def test_all_is_sorted_and_complete() -> None:
    # isort-style, as ruff keeps it: CONSTANTS, then Classes, then functions.
    def key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert streamq.__all__ == sorted(streamq.__all__, key=key)
    public = {
        name
        for name, value in vars(streamq).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name not in {"annotations"}
    }
    assert public == set(streamq.__all__)


def test_every_public_class_is_documented() -> None:
    for name in streamq.__all__:
        value = getattr(streamq, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_streamq_never_imports_processors_or_server() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"processors", "server"}, (path, name)


def test_exceptions_share_one_root() -> None:
    errors = [
        getattr(streamq, n)
        for n in streamq.__all__
        if inspect.isclass(getattr(streamq, n)) and issubclass(getattr(streamq, n), BaseException)
    ]
    for error in errors:
        assert issubclass(error, (streamq.StreamqError, streamq.HandlerSignal)), error
