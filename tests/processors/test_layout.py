"""The shape of the processors package holds: imports go one way (no cycles), only server's
public names are used, importing the app module builds no deployment, and every plan job has
a module-level handler over a typed payload."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
from collections import defaultdict
from pathlib import Path

import msgspec

import server
from processors.config import JOBS
from processors.jobs import HANDLERS

PACKAGE = Path(__file__).resolve().parents[2] / "processors"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, list[tuple[str, list[str]]]]:
    """Module -> (imported module, names imported from it), static and function-level."""
    found: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found[_module_name(path)].append((node.module, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    found[_module_name(path)].append((alias.name, []))
    return found


def test_processors_has_no_import_cycles() -> None:
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for module, imported in _imports().items():
        for target, names in imported:
            submodules = {f"{target}.{name}" for name in names} & modules
            graph[module] |= submodules
            if target in modules and not submodules:
                graph[module].add(target)
    # A cycle shows as a module reachable from itself; a package reaching its own
    # submodules (re-exports) is not one.
    for start in modules:
        seen: set[str] = set()
        todo = [t for t in graph[start] if not t.startswith(start + ".")]
        while todo:
            current = todo.pop()
            assert current != start, f"{start} imports itself through {sorted(seen)}"
            if current not in seen:
                seen.add(current)
                todo.extend(graph[current])


def test_processors_uses_only_the_public_names_of_server() -> None:
    for module, imported in _imports().items():
        for target, names in imported:
            if target.split(".")[0] != "server":
                continue
            assert target == "server", f"{module} imports {target}, not server's public API"
            assert set(names) <= set(server.__all__), (module, names)


def test_importing_the_app_module_builds_no_deployment() -> None:
    code = (
        "import sys, processors.app, processors.runtime as r\n"
        "assert not r._RUNTIMES, 'a Runtime was built at import'\n"
        "assert 'processors.api' not in sys.modules and 'server' not in sys.modules\n"
        "assert processors.app.app is processors.app.app and len(r._RUNTIMES) == 1\n"
        "assert processors.app.example_job['name'] == 'sync-wallet'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_plan_job_has_a_module_level_handler_over_typed_payloads() -> None:
    assert list(HANDLERS) == list(JOBS)
    for name, handler in HANDLERS.items():
        assert handler.__qualname__ == handler.__name__, f"{name}: {handler.__qualname__}"
        hints = typing.get_type_hints(handler)
        payload = hints["req"]
        assert issubclass(payload, msgspec.Struct), (name, payload)
        assert "return" in hints, name
