"""``streamq run`` (what ``make run`` calls): the whole system on one machine.

The embedded Redis is owned by this process and supervised: if it dies it is restarted from its
AOF on the same port (one log line says so) and the children reconnect. One ``run`` per
directory: a second one says which is running and exits 1. The HTTP server and the workers run
as child processes (``streamq serve``, ``streamq worker``); a demo producer runs in-process.
The banner is shown again on Enter (on a terminal), on SIGUSR1 and every ten minutes. Ctrl-C
or SIGTERM stops the children, then the embedded server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from streamq._embedded import Embedded, die_with_parent, free_port, port_free
from streamq.cli._app_spec import default_app_spec
from streamq.cli._contract import Application, ExampleJob, load_application
from streamq.cli._output import CliError, UsageError
from streamq.cli._serve import server_installed

STOP_GRACE_S = 15.0
BANNER_EVERY_S = 600.0


def say(text: str = "") -> None:
    print(text, flush=True)


def pick_port(host: str, wanted: int) -> int:
    return wanted if wanted and port_free(host, wanted) else free_port()


def first_free_run(host: str, wanted: int, n: int) -> int:
    """``wanted``, or the next port after it, with the ``n`` ports from there free."""
    for first in range(wanted, 65536 - n):
        if all(port_free(host, p) for p in range(first, first + n)):
            return first
    raise CliError(f"no {n} free ports from {wanted} on {host}")


def command(args: argparse.Namespace) -> int:
    if args.processes < 1:
        raise UsageError(f"--processes must be >= 1, not {args.processes}")
    spec = args.app or default_app_spec()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the readiness polls
    application = load_application(spec)  # fail on a bad --app before anything starts
    url = args.redis_url or os.environ.get("STREAMQ_REDIS_URL")
    embedded: Embedded | None = None
    with contextlib.ExitStack() as stack:
        record: Path | None = None
        if not url:
            embedded = Embedded()
            record = stack.enter_context(claim_directory(embedded.directory))
            url = embedded.attach_or_start(supervise=True)
        try:
            return asyncio.run(Supervisor(args, application, url, embedded, record).run())
        finally:
            if embedded is not None and embedded.owned:
                embedded.stop()
                say("embedded Redis stopped")
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


@contextlib.contextmanager
def claim_directory(directory: Path) -> Iterator[Path]:
    """Holds this directory's ``run.lock`` while ``run`` runs; yields the path of its record
    (``run.json``: pid, then URLs). Raises CliError naming the run that holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    record = directory / "run.json"
    with (directory / "run.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CliError(already_running(directory, record)) from None
        write_record(record, {"pid": os.getpid()})
        try:
            yield record
        finally:
            with contextlib.suppress(FileNotFoundError):
                record.unlink()


def already_running(directory: Path, record: Path) -> str:
    try:
        info = json.loads(record.read_text())
    except (OSError, ValueError):
        info = {}
    where = [f"pid {info.get('pid', '?')}"]
    where += [f"{k} {info[k]}" for k in ("redis", "api") if info.get(k)]
    return (
        f"streamq run is already running for ./{directory} ({', '.join(where)}); "
        "stop it first, or run in another directory"
    )


def write_record(record: Path, info: dict[str, Any]) -> None:
    tmp = record.with_name(f".{record.name}.{os.getpid()}")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, record)


def cli_command() -> str:
    """How to call ``streamq`` from here: the bare name if it is on PATH, else this
    environment's script (``.venv/bin/streamq`` after ``make run``)."""
    script = Path(sys.executable).parent / "streamq"
    found = shutil.which("streamq")
    if found and Path(found).resolve() == script.resolve():
        return "streamq"
    if not script.exists():
        return f"{sys.executable} -m streamq.cli"
    relative = os.path.relpath(script)
    return relative if not relative.startswith("..") else str(script)


class Supervisor:
    def __init__(
        self,
        args: argparse.Namespace,
        application: Application,
        url: str,
        embedded: Embedded | None,
        record: Path | None = None,
    ) -> None:
        self.args = args
        self.application = application
        self.spec = application.spec
        self.app = application.app
        self.url = url
        self.embedded = embedded
        self.record = record
        self.banner_lines: list[str] = []
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stop = asyncio.Event()
        self.failed: str | None = None
        self.app.use_redis_url(url)
        self.env = {**os.environ, "STREAMQ_REDIS_URL": url, "PYTHONUNBUFFERED": "1"}

    def spawn(self, name: str, *argv: str) -> None:
        # Own sessions: a terminal's Ctrl-C reaches only us, and we stop children in order.
        # A parent-death signal: a run killed outright leaves no server or worker behind
        # (spawned from the event loop's thread, which lives as long as the process).
        self.children[name] = subprocess.Popen(
            [sys.executable, "-m", "streamq.cli", *argv],
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        loop.add_signal_handler(signal.SIGUSR1, self.show_banner)
        terminal = sys.stdin.isatty()
        if terminal:
            loop.add_reader(sys.stdin.fileno(), self._on_enter)
        producer: asyncio.Task[None] | None = None
        try:
            await self.app.connect()
            if not await self.app.ping():
                raise CliError(f"Redis at {self.url} does not answer")
            api = await self.start_server()
            metrics = self.start_workers()
            self.banner(api, metrics)
            if self.record is not None:
                info = {"pid": os.getpid(), "redis": self.url, "api": api, "metrics": metrics}
                write_record(self.record, info)
            if not self.args.no_demo:
                producer = asyncio.create_task(self.produce())
            await self.watch()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
                loop.remove_signal_handler(sig)
            if terminal:
                loop.remove_reader(sys.stdin.fileno())
            if producer is not None:
                producer.cancel()
                # Bounded: a cancelled blocking Redis read may not end at once.
                await asyncio.wait([producer], timeout=5)
            await asyncio.to_thread(self.stop_children)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.app.close(), timeout=10)
        if self.failed:
            raise CliError(self.failed)
        return 0

    async def start_server(self) -> str | None:
        if self.args.no_server:
            return None
        if not server_installed():
            say("(no HTTP server: the server package is not installed)")
            return None
        host = self.args.host
        port = pick_port(host, self.args.port)
        if self.args.port and port != self.args.port:
            say(f"(port {self.args.port} is taken: the API listens on {port})")
        # Warnings only: request logs of the server would drown the status lines.
        self.spawn(
            "server",
            *("--log-level", "WARNING", "serve", "--app", self.spec),
            *("--host", host, "--port", str(port)),
        )
        base = f"http://{host}:{port}"
        import httpx  # here: the other commands need not load it

        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline and not self.stop.is_set():
                if self.children["server"].poll() is not None:
                    self.failed = "the HTTP server exited during start (see its error above)"
                    self.stop.set()
                    return None
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{base}/healthz")).status_code == 200:
                        return base
                await asyncio.sleep(0.1)
        say("(the HTTP server has not answered yet)")
        return base

    def start_workers(self) -> list[str]:
        """One ``streamq worker --processes N`` (N > 1 supervises N processes, restarting any
        that dies); their metrics are on N consecutive free ports."""
        n = self.args.processes
        port = first_free_run("127.0.0.1", 9108, n)
        self.spawn(
            "workers" if n > 1 else "worker",
            "worker",
            self.spec,
            "--processes",
            str(n),
            "--metrics-port",
            str(port),
            "--concurrency",
            str(self.args.concurrency),
            "--grace",
            "5",
        )
        return [f"http://127.0.0.1:{p}/metrics" for p in range(port, port + n)]

    def banner(self, api: str | None, metrics: list[str]) -> None:
        if self.embedded is None:
            where = "from STREAMQ_REDIS_URL / --redis-url"
        elif self.embedded.owned:
            where = (
                f"embedded, data in {self.embedded.directory}/, restarted if it dies, "
                "stopped with this command"
            )
        else:
            where = f"embedded, already running for {self.embedded.directory}/: left running"
        example = self.example_job()
        first = example[0] if example else "QUEUE"
        cli = cli_command()
        dashboard = f"dashboard {api}/ui, " if api else ""
        lines = ["", f"streamq is running: {dashboard}app {self.spec}, {len(metrics)} worker(s)"]
        if api:
            lines.append(f"  Dashboard {api}/ui")
        lines.append(f"  Redis     {self.url}  ({where})")
        if api:
            lines.append(f"  API       {api}/v1/queues")
            lines.append(f"  Docs      {api}/docs   (OpenAPI: {api}/openapi.json)")
            lines.append(f"  Metrics   {api}/metrics   workers: {' '.join(metrics)}")
            lines.append(f"  Try       {self.curl_example(api)}")
        else:
            lines.append(f"  Metrics   workers: {' '.join(metrics)}")
        lines.append(f"  Look      {cli} inspect queues   |   {cli} tail {first}")
        again = "press Enter, or " if sys.stdin.isatty() else ""
        lines.append(f"  Again     {again}kill -USR1 {os.getpid()}   (this text)")
        lines.append("  Stop      Ctrl-C")
        lines.append("")
        self.banner_lines = lines
        self.show_banner()

    def show_banner(self) -> None:
        for line in self.banner_lines:
            say(line)

    def _on_enter(self) -> None:
        try:
            data = os.read(sys.stdin.fileno(), 4096)
        except OSError:
            data = b""
        if not data:  # end of input: stop listening
            asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
            return
        self.show_banner()

    def example_job(self) -> tuple[str, str, Any] | None:
        """(queue, name, payload) for the curl line: the application's ``example_job`` if it
        declares one, else its first task with placeholder values."""
        given: ExampleJob | None = self.application.example()
        if given is not None:
            return given["queue"], given["name"], given.get("payload")
        task = next(iter(self.app.tasks.values()), None)
        if task is None:
            return None
        return task.queue, task.name, example_payload(task.payload_type)

    def curl_example(self, api: str) -> str:
        example = self.example_job()
        if example is None:
            return f"curl -s {api}/v1/queues"
        queue, name, payload = example
        body = json.dumps({"name": name, "payload": payload})
        return (
            f"curl -s -X POST {api}/v1/queues/{queue}/jobs "
            f"-H 'content-type: application/json' -d '{body}'"
        )

    async def produce(self) -> None:
        workload = self.application.demo_workload
        if workload is None:
            return
        try:
            say(f"demo workload: {self.application.workload_summary()}")
            await workload(self.app)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the demo is a convenience: report and keep the system up
            say(f"demo workload stopped: {type(exc).__name__}: {exc}")

    async def watch(self) -> None:
        started = time.monotonic()
        duration = self.args.duration
        next_status = started + self.args.status_every
        next_banner = started + BANNER_EVERY_S
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.25)
            now = time.monotonic()
            for name, child in self.children.items():
                if child.poll() is not None and not self.stop.is_set():
                    self.failed = f"{name} exited with code {child.returncode}; stopping"
                    self.stop.set()
            if duration is not None and now - started >= duration:
                self.stop.set()
            if now >= next_banner and not self.stop.is_set():
                next_banner = now + BANNER_EVERY_S
                self.show_banner()
            if now >= next_status and not self.stop.is_set():
                next_status = now + self.args.status_every
                with contextlib.suppress(Exception):
                    say(await self.status())

    async def status(self) -> str:
        """One line: totals over the app's queues, then the queues with work in them."""
        sums = dict.fromkeys(("waiting", "active", "delayed", "completed", "dead"), 0)
        busy, workers, paused = [], 0, []
        for queue in self.app.queues_of_tasks():
            s = await self.app.stats(queue)
            row = {
                "waiting": s.waiting,
                "active": s.active,
                "delayed": s.delayed,
                "completed": s.totals.get("completed", 0),
                "dead": s.dead,
            }
            for key, value in row.items():
                sums[key] += value
            workers = max(workers, s.workers)
            if s.paused:
                paused.append(queue)
            if s.waiting or s.active:
                busy.append(f"{queue} {s.waiting}/{s.active}")
        line = ", ".join(f"{v} {k}" for k, v in sums.items()) + f"; {workers} worker(s)"
        if busy:
            line += " | busy (waiting/active): " + ", ".join(busy[:4])
        if paused:
            line += " | paused: " + ", ".join(paused)
        return time.strftime("[%H:%M:%S] ") + line

    def stop_children(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in self.children.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self.children:
            say(f"stopped {', '.join(self.children)}")


def example_payload(payload_type: Any) -> Any:
    """A payload that fits ``payload_type``, for the curl line (placeholders by type)."""
    try:
        schema = msgspec.json.schema(payload_type)
    except (TypeError, ValueError):
        return {}
    return _example(schema, schema.get("$defs", {}))


def _example(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    if depth > 5:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _example(defs.get(ref.rsplit("/", 1)[-1], {}), defs, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _example(schema[key][0], defs, depth + 1)
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {
            k: _example(v, defs, depth + 1)
            for k, v in props.items()
            if k in schema.get("required", [])
        }
    return {"string": "example", "integer": 1, "number": 1.0, "boolean": True, "array": []}.get(
        str(kind), None
    )
