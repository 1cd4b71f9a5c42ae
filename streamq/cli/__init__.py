"""The ``streamq`` command line: one module per command, reaching down into the broker.

Exit codes: 0 ok; 1 the operation failed (Redis unreachable, job not found, a command that
refused); 2 usage (bad arguments, an unknown queue, lane or event type). Errors are one line
on stderr, never a traceback. Every read command takes ``--json``.

Redis: ``--redis-url``, else ``$STREAMQ_REDIS_URL``, else the embedded server of ``./.streamq/``.
Only ``run``, ``worker``, ``serve`` and ``redis`` start that server when none runs (and own it:
it stops with them); the read and operate commands attach to a running one or exit 1 saying
none runs, creating nothing (``_session``).
The application (``--app module[:attribute]``) follows the contract in ``_contract``; its
default is ``$STREAMQ_APP``, else ``[tool.streamq] app`` in ``./pyproject.toml``, else the
bundled demo (``streamq.demo:app``).

Layout: ``_parser`` (the arguments), ``_main`` (errors to exit codes), ``_output`` (tables,
JSON), ``_logs`` (holding back repeated Redis-unreachable warnings), ``_app_spec`` and ``_contract`` (finding the application), then the commands:
``_worker``, ``_enqueue``, ``_inspect`` (reading through ``_read``), ``_tail``, ``_dead``,
``_pause``, ``_redis``, ``_serve`` and ``_run`` (the only two that reach the HTTP server),
``_bench``, ``_completion``.
"""

from __future__ import annotations

from streamq.cli._app_spec import default_app_spec, load_app
from streamq.cli._main import main
from streamq.cli._output import CliError, UsageError
from streamq.cli._parser import build_parser

__all__ = [
    "CliError",
    "UsageError",
    "build_parser",
    "default_app_spec",
    "load_app",
    "main",
]
