"""The public API: everything public is exported, __all__ is sorted, streamq stands alone."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

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


# The layers (DESIGN §1): the broker never names the application, the server or the command
# line; the command line reaches the server only from the commands that serve it.
UPPER_LAYERS = ("processors", "server", "streamq.cli")
SERVER_COMMANDS = {"_run.py", "_serve.py"}
# Calls that import a module named by a string.
IMPORTERS = {"import_module", "find_spec", "__import__", "resolve_name", "run_module"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _string_value(node: ast.AST, constants: dict[str, str]) -> str | None:
    """A string an argument certainly holds: a literal, an f-string's leading literal, or a
    name bound once in the module to a literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return _string_value(node.values[0], constants)
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def imported_names(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Every module name ``source`` (the text of ``module``) imports: statically (absolute,
    relative, ``from package import submodule``) or by a string given to importlib."""
    tree = ast.parse(source)
    constants = {
        target.id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    package = module if is_package else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in IMPORTERS:
                value = _string_value(node.args[0], constants)
                if value is not None:
                    names.append(value.lstrip("."))
    return names


def _names_layer(name: str, layers: tuple[str, ...]) -> bool:
    return any(name == layer or name.startswith(f"{layer}.") for layer in layers)


def layer_violations(path: Path, layers: tuple[str, ...]) -> list[str]:
    module = _module_name(path)
    names = imported_names(path.read_text(), module, is_package=path.name == "__init__.py")
    return [
        f"{path.relative_to(PACKAGE.parent)} imports {n}" for n in names if _names_layer(n, layers)
    ]


def test_the_broker_never_imports_the_application_the_server_or_the_cli() -> None:
    cli = PACKAGE / "cli"
    modules = [p for p in PACKAGE.rglob("*.py") if not p.is_relative_to(cli)]
    assert len(modules) > 10  # the walk found the broker
    violations = [v for path in modules for v in layer_violations(path, UPPER_LAYERS)]
    assert violations == []


def test_only_run_and_serve_reach_the_server_and_nothing_reaches_processors() -> None:
    cli = PACKAGE / "cli"
    assert (cli / "__init__.py").exists()
    violations = []
    for path in cli.rglob("*.py"):
        layers = ("processors",) if path.name in SERVER_COMMANDS else ("processors", "server")
        violations += layer_violations(path, layers)
    assert violations == []


@pytest.mark.parametrize(
    "source",
    [
        "import server.main",
        "import processors",
        "from server.routing import Operation",
        "from streamq import cli",
        "from streamq.cli import build_parser",
        "from .cli import main",
        "def f():\n    from processors.app import app",
        "import importlib\nimportlib.import_module('processors.app')",
        "from importlib import import_module\nimport_module('server.main')",
        "import importlib.util\nimportlib.util.find_spec('server')",
        "__import__('processors')",
        "import importlib\nNAME = 'server.main'\nimportlib.import_module(NAME)",
        "import importlib\nimportlib.import_module(f'processors.{1}')",
    ],
)
def test_the_layer_check_sees_every_way_of_importing(source: str) -> None:
    names = imported_names(source, "streamq._example")
    assert any(_names_layer(n, UPPER_LAYERS) for n in names), names


def test_the_layer_check_lets_the_broker_import_itself() -> None:
    source = "import importlib\nfrom streamq import _keys\nfrom . import _types\nimportlib.import_module('streamq.lua')"
    names = imported_names(source, "streamq._example")
    assert not any(_names_layer(n, UPPER_LAYERS) for n in names), names


def test_exceptions_share_one_root() -> None:
    errors = [
        getattr(streamq, n)
        for n in streamq.__all__
        if inspect.isclass(getattr(streamq, n)) and issubclass(getattr(streamq, n), BaseException)
    ]
    for error in errors:
        assert issubclass(error, (streamq.StreamqError, streamq.HandlerSignal)), error
