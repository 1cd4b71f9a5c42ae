"""The application contract: what a module named by ``--app module[:attribute]`` may provide.

Every command needs only the App; ``streamq serve`` and ``streamq run`` also read the optional
names below from the same module. Nothing else is looked up, and a name of the wrong kind is a
usage error naming it (never a silent skip).

===================  ========  ==============================================================
name                 needed    what
===================  ========  ==============================================================
``app`` (or the      yes       a ``streamq.App``, or a function returning one; the attribute
attribute after                is the part of the spec after ``:`` (default ``app``)
``:``)
``http_operations``  no        ``() -> Sequence[server.Operation]``: the application's own HTTP
                               endpoints, served beside the REST API by ``serve`` and ``run``
``example_job``      no        an :class:`ExampleJob` dict, or ``(app) -> ExampleJob``: the job
                               ``run`` shows in its ``curl`` line (default: the app's first
                               task with placeholder values for its payload type)
``demo_workload``    no        ``async (app) -> None``: what ``run`` produces beside the
                               workers until it stops (not with ``--no-demo``); the first line
                               of its docstring is what ``run`` prints when it starts it
===================  ========  ==============================================================

Example (``myproject/tasks.py``)::

    app = App("myproject")

    def http_operations() -> list[server.Operation]: ...
    example_job = {"queue": "mail", "name": "send", "payload": {"to": "a@example.com"}}
    async def demo_workload(app: App) -> None:
        \"\"\"a mail every second\"\"\"
        ...

The default spec: ``$STREAMQ_APP``, else ``[tool.streamq] app = "module:attribute"`` in the
working directory's ``pyproject.toml``, else ``streamq.demo:app`` (see ``_app_spec``).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, Protocol, TypedDict

from streamq._app import App
from streamq.cli._app_spec import load_app
from streamq.cli._output import UsageError


class ExampleJob(TypedDict):
    """One job as a client would send it: its queue, its name and a payload that fits."""

    queue: str
    name: str
    payload: NotRequired[Any]


class DemoWorkload(Protocol):
    """``async def demo_workload(app) -> None``: runs until cancelled."""

    def __call__(self, app: App, /) -> Awaitable[None]: ...


@dataclass(frozen=True, kw_only=True)
class Application:
    """An application module loaded by the contract above."""

    spec: str
    app: App
    http_operations: Callable[[], Sequence[object]] | None = None
    example_job: ExampleJob | Callable[[App], ExampleJob] | None = None
    demo_workload: DemoWorkload | None = None

    def operations(self) -> list[object]:
        """The application's own HTTP endpoints (none if it declares none)."""
        if self.http_operations is None:
            return []
        return list(self.http_operations())

    def example(self) -> ExampleJob | None:
        """The declared example job, called with the app if it is a function; None if the
        module declares none. Raises UsageError for a result that is not a job."""
        given: object = self.example_job
        if callable(given):
            given = given(self.app)
        if given is None:
            return None
        if not (
            isinstance(given, dict)
            and isinstance(given.get("queue"), str)
            and isinstance(given.get("name"), str)
        ):
            raise UsageError(f"example_job of {self.spec!r} is not a {{queue, name, payload}} dict")
        job = ExampleJob(queue=given["queue"], name=given["name"])
        if "payload" in given:
            job["payload"] = given["payload"]
        return job

    def workload_summary(self) -> str:
        """What ``run`` prints when it starts the demo workload."""
        doc = inspect.getdoc(self.demo_workload) or ""
        return doc.splitlines()[0] if doc else "running demo_workload(app) of the app"


def load_application(spec: str) -> Application:
    """The App of ``spec`` and the optional names its module declares. Raises UsageError when
    the module or the App cannot be found, or a declared name is of the wrong kind."""
    app = load_app(spec)
    module = sys.modules[spec.partition(":")[0]]
    operations = getattr(module, "http_operations", None)
    if operations is not None and not callable(operations):
        raise UsageError(f"http_operations of {spec!r} must be a function returning operations")
    example = getattr(module, "example_job", None)
    if example is not None and not (callable(example) or isinstance(example, dict)):
        raise UsageError(f"example_job of {spec!r} must be a dict or a function of the app")
    workload = getattr(module, "demo_workload", None)
    if workload is not None and not inspect.iscoroutinefunction(workload):
        raise UsageError(f"demo_workload of {spec!r} must be an async function of the app")
    return Application(
        spec=spec,
        app=app,
        http_operations=operations,
        example_job=example,
        demo_workload=workload,
    )
