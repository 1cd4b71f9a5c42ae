"""What the ``streamq`` commands do (the parser in ``streamq.cli`` wires them up)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from streamq._app import App
from streamq._cli_output import CliError, UsageError


def default_app_spec() -> str:
    """``$STREAMQ_APP``, else the processors' app if it imports, else the demo."""
    spec = os.environ.get("STREAMQ_APP")
    if spec:
        return spec
    _cwd_on_path()
    try:
        module = importlib.import_module("processors.app")
    except Exception:  # absent or broken: the demo still shows the system working
        return "streamq.demo:app"
    return "processors.app:app" if hasattr(module, "app") else "streamq.demo:app"


def _cwd_on_path() -> None:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def load_app(spec: str) -> App:
    """``module[:attribute]`` -> the App (attribute defaults to ``app``; it may also be a
    function returning one)."""
    module_name, _, attr = spec.partition(":")
    _cwd_on_path()
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


def worker_command(args: argparse.Namespace) -> int:
    from streamq._worker import run_worker

    app = load_app(args.app)
    if args.redis_url:
        app._url = args.redis_url
    if args.metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(args.metrics_port, addr=args.metrics_host)
        except OSError as exc:
            raise CliError(
                f"cannot serve metrics on {args.metrics_host}:{args.metrics_port} ({exc}); "
                "pass --metrics-port N, or 0 to turn metrics off"
            ) from exc
    queues = args.queues.split(",") if args.queues else None
    asyncio.run(run_worker(app, queues=queues, concurrency=args.concurrency, grace=args.grace))
    return 0


def enqueue_command(args: argparse.Namespace) -> int:
    payload = _payload(args.payload)
    app = load_app(args.app) if args.app else App("cli", redis_url=args.redis_url)
    if not args.app:
        # Without the app's code there is no type to check against: accept any payload.
        def untyped(ctx: Any, payload: Any) -> None: ...

        app.task(args.name, queue=args.queue)(untyped)
    elif args.redis_url:
        app._url = args.redis_url

    async def go() -> dict[str, Any]:
        try:
            h = await app.enqueue(
                args.name,
                payload,
                id=args.id,
                queue=args.queue,
                priority=_priority(args.priority),
                delay=args.delay,
            )
            return {
                "id": h.id,
                "queue": h.queue,
                "state": h.state_at_enqueue,
                "deduplicated": h.deduplicated,
            }
        finally:
            await app.close()

    print(json.dumps(asyncio.run(go())))
    return 0


def _payload(text: str | None) -> Any:
    """The --payload JSON: given inline, as ``@file``, or ``-`` for standard input."""
    if text is None:
        return None
    source = "--payload"
    if text == "-":
        text, source = sys.stdin.read(), "standard input"
    elif text.startswith("@"):
        try:
            text, source = Path(text[1:]).read_text(), text[1:]
        except OSError as exc:
            raise UsageError(f"cannot read the payload file: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the payload in {source} is not JSON: {exc}") from exc


def _priority(value: str | None) -> str | int | None:
    return int(value) if value and value.isdigit() else value


def redis_command(args: argparse.Namespace) -> int:
    from streamq._embedded import Embedded

    embedded = Embedded()
    url = embedded.attach_or_start()
    if not embedded.owned:
        print(f"an embedded server already runs for this directory: {url}")
        return 0
    print(
        f"embedded valkey at {url} (data in {embedded.directory}/, AOF on); Ctrl-C stops it",
        flush=True,
    )

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM too: the server runs in its own session and would outlive this process.
    signal.signal(signal.SIGTERM, stop)
    try:
        assert embedded.proc is not None
        code = embedded.proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        embedded.stop()
    raise CliError(f"valkey-server exited with code {code}; see {embedded.directory}/valkey.log")


def serve_command(args: argparse.Namespace) -> int:
    spec = args.app or default_app_spec()
    load_app(spec)  # a clear error here, before the server imports it
    # The application's own endpoints, when its module declares them (processors does).
    module = sys.modules[spec.partition(":")[0]]
    operations = getattr(module, "http_operations", None)
    extra = list(operations()) if callable(operations) else []
    if args.redis_url:
        os.environ["STREAMQ_REDIS_URL"] = args.redis_url
    try:
        server_main = importlib.import_module("server.main")
    except ImportError as exc:
        raise CliError(f"the HTTP server is not installed (server.main): {exc}") from exc
    # uvicorn re-raises the stop signal once it has shut down; a requested stop is a clean exit.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        level = (args.log_level or "info").lower()
        server_main.serve(spec, args.host, args.port, log_level=level, extra_operations=extra)
    except ValueError as exc:  # the server's SettingsError: a refused bind, a bad setting
        raise CliError(str(exc)) from exc
    return 0


def run_command(args: argparse.Namespace) -> int:
    from streamq._run import run

    return run(args)


def bench_command(args: argparse.Namespace) -> int:
    # Looked up at run time: the benchmark module is written separately.
    try:
        module = importlib.import_module("streamq._bench_cli")
    except ModuleNotFoundError as exc:
        raise CliError(f"the benchmarks are not available in this install ({exc})") from exc
    return int(module.bench(args))


def completion_command(args: argparse.Namespace) -> int:
    from streamq._cli_completion import SHELLS
    from streamq.cli import build_parser

    sys.stdout.write(SHELLS[args.shell](build_parser()))
    return 0


def on_app(
    fn: Callable[[App, argparse.Namespace], Awaitable[int]], check_queue: bool = True
) -> Callable[[argparse.Namespace], int]:
    """Runs ``fn(app, args)`` with a connected App; first checks the queue is known."""

    def command(args: argparse.Namespace) -> int:
        async def go() -> int:
            from streamq._cli_inspect import check_queue as check

            app = App("cli", redis_url=args.redis_url)
            try:
                await app.connect()
                if check_queue and getattr(args, "queue", None) is not None:
                    await check(app, args.queue)
                return await fn(app, args)
            finally:
                await app.close()

        return asyncio.run(go())

    return command


async def pause_command(app: App, args: argparse.Namespace) -> int:
    paused = args.command == "pause"
    await (app.pause(args.queue) if paused else app.resume(args.queue))
    if args.json:
        print(json.dumps({"queue": args.queue, "paused": paused}))
    else:
        print(f"{args.queue} {'paused: workers take no new jobs' if paused else 'resumed'}")
    return 0


async def dead_command(app: App, args: argparse.Namespace) -> int:
    from streamq import _cli_dead

    return await _cli_dead.run(app, args)


async def tail_command(app: App, args: argparse.Namespace) -> int:
    from streamq import _cli_tail

    return await _cli_tail.run(app, args)


def view_command(name: str) -> Callable[[App, argparse.Namespace], Awaitable[int]]:
    async def view(app: App, args: argparse.Namespace) -> int:
        from streamq._cli_views import VIEWS

        return await VIEWS[name](app, args)

    return view
