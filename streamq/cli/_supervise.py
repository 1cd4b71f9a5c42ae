"""``streamq worker --processes N``: N worker processes under one supervisor, the way a Python
worker uses every core.

Each child is a plain ``streamq worker`` with the same options, its own Redis connections and
its own consumer name (which carries its pid); child ``i`` (0-based) serves metrics on
``--metrics-port + i``. Redis is resolved once, here (starting this directory's embedded server
if it comes to that, owned by the supervisor so a dying child cannot take it down), and handed
to the children in ``$STREAMQ_REDIS_URL``.

A child that dies is restarted after a backoff that doubles while it keeps dying young
(``restart_delay``), one log line per restart with its exit code; one that exits with a usage
error (2) is not: the next start would fail the same way, so the supervisor stops. SIGTERM or
SIGINT is forwarded to every child for the graceful drain, and the supervisor exits when they
have; children still running ``grace`` + ``DRAIN_MARGIN_S`` later, or ``KILL_AFTER_S`` after a
second signal, are killed (SIGKILL)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from streamq._app import App
from streamq._embedded import die_with_parent, free_port, port_free
from streamq.cli._output import CliError, UsageError

log = logging.getLogger(__name__)

RESTART_MIN_S = 0.5
RESTART_MAX_S = 30.0
# A child that ran this long before dying was healthy: its next restart is quick again.
HEALTHY_AFTER_S = 30.0
DRAIN_MARGIN_S = 15.0
KILL_AFTER_S = 5.0
POLL_S = 0.2
USAGE_EXIT = 2


def restart_delay(previous: float, lived: float) -> float:
    """Seconds before restarting a child that lived ``lived`` seconds, the previous delay
    having been ``previous`` (0 for its first death)."""
    if lived >= HEALTHY_AFTER_S:
        return RESTART_MIN_S
    return min(max(previous * 2, RESTART_MIN_S), RESTART_MAX_S)


def describe_exit(code: int) -> str:
    """``code 1``, or ``code -9 (SIGKILL)`` for a child killed by a signal."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"code {code} ({signal.Signals(-code).name})"
    return f"code {code}"


def metrics_ports(host: str, first: int, n: int, *, given: bool) -> list[int]:
    """The metrics port of each child: ``first + i``; 0 turns metrics off. Ports given
    explicitly must all be free (CliError naming the taken one); the default falls back to a
    free port per child, as a single worker does."""
    if first == 0:
        return [0] * n
    wanted = list(range(first, first + n))
    if given:
        for port in wanted:
            if not port_free(host, port):
                raise CliError(
                    f"cannot serve metrics on {host}:{port} (taken); --processes {n} uses "
                    f"ports {first}-{first + n - 1}: pass another --metrics-port, or 0 for none"
                )
        return wanted
    return [port if port_free(host, port) else free_port() for port in wanted]


def child_argv(args: argparse.Namespace, metrics_port: int) -> list[str]:
    """``streamq worker`` with the supervisor's options, one process, metrics on its port.
    (Redis comes in the environment, so a password never shows in a process listing.)"""
    argv = [sys.executable, "-m", "streamq.cli"]
    if args.log_level:
        argv += ["--log-level", args.log_level]
    argv += ["worker", args.app, "--concurrency", str(args.concurrency)]
    argv += ["--grace", str(args.grace), "--unknown-grace", str(args.unknown_grace)]
    argv += ["--metrics-host", args.metrics_host, "--metrics-port", str(metrics_port)]
    if args.queues:
        argv += ["--queues", args.queues]
    if args.isolation_processes is not None:
        argv += ["--isolation-processes", str(args.isolation_processes)]
    return argv


@dataclass
class Child:
    index: int  # 1-based, as logged
    port: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = 0.0
    restart_at: float = 0.0
    restarts: int = 0


class Supervisor:
    def __init__(self, args: argparse.Namespace, app: App) -> None:
        self.args = args
        self.app = app
        self.ports = metrics_ports(
            args.metrics_host,
            args.metrics_port,
            args.processes,
            given=getattr(args, "metrics_port_given", False),
        )
        self.children = [Child(i + 1, port) for i, port in enumerate(self.ports)]
        self.env: dict[str, str] = {}
        self.stopping = False
        self.kill_at = 0.0
        self.failure: str | None = None
        self.usage_failure = False
        # Set by a signal, so it is acted on at once; children's exits are polled.
        self.wake = asyncio.Event()

    def start(self, child: Child) -> None:
        # Own sessions: a terminal's Ctrl-C reaches only the supervisor, which forwards it
        # once. A parent-death signal: a supervisor killed outright leaves no worker behind.
        child.proc = subprocess.Popen(
            child_argv(self.args, child.port),
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        child.started = time.monotonic()
        where = f", metrics on port {child.port}" if child.port else ""
        log.info("worker process %d started (pid %d%s)", child.index, child.proc.pid, where)

    def on_signal(self, sig: signal.Signals) -> None:
        self.wake.set()
        now = time.monotonic()
        if self.stopping:
            self.kill_at = min(self.kill_at, now + KILL_AFTER_S)
            log.warning("%s again: killing the workers left in %.0f s", sig.name, KILL_AFTER_S)
            return
        log.info("%s: draining %d worker processes", sig.name, len(self.alive()))
        self.stop(sig, now)

    def stop(self, sig: signal.Signals, now: float) -> None:
        self.stopping = True
        self.kill_at = now + self.args.grace + DRAIN_MARGIN_S
        for proc in self.alive():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]

    def reap(self, child: Child, code: int, now: float) -> None:
        """A child exited while the others run on: restart it later, or stop on a usage error."""
        assert child.proc is not None
        pid, lived = child.proc.pid, now - child.started
        child.proc = None
        if code == USAGE_EXIT:
            self.failure = (
                f"worker process {child.index} (pid {pid}) exited with {describe_exit(code)}, "
                "a usage error (see above); not restarting it"
            )
            self.usage_failure = True
            self.stop(signal.SIGTERM, now)
            return
        child.delay = restart_delay(child.delay, lived)
        child.restart_at = now + child.delay
        child.restarts += 1
        log.warning(
            "worker process %d (pid %d) exited with %s after %.1f s; restarting it in %.1f s "
            "(restart %d)",
            child.index,
            pid,
            describe_exit(code),
            lived,
            child.delay,
            child.restarts,
        )

    async def run(self) -> int:
        # Resolves Redis the way a single worker would (its own URL, $STREAMQ_REDIS_URL, else
        # the embedded server, started here); the children all use that one.
        await self.app.connect()
        try:
            url = self.app.broker.url
            assert url is not None  # set by connect
            self.env = {**os.environ, "STREAMQ_REDIS_URL": url}
            await self._supervise()
        finally:
            await self.app.close()
        if self.failure is not None:
            raise (UsageError if self.usage_failure else CliError)(self.failure)
        return 0

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.on_signal, sig)
        try:
            for child in self.children:
                self.start(child)
            while not self._done():
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), POLL_S)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            for proc in self.alive():  # only on an error in here: never leave workers behind
                proc.kill()
                proc.wait()

    def _done(self) -> bool:
        """One round: reap, restart, kill late ones; True once stopping and all have exited."""
        now = time.monotonic()
        kill = self.stopping and now >= self.kill_at
        if kill:
            self.kill_at = math.inf  # once: the killed ones are reaped in the next rounds
        for child in self.children:
            if child.proc is None:
                if not self.stopping and now >= child.restart_at:
                    self.start(child)
                continue
            code = child.proc.poll()
            if code is None:
                if kill:
                    log.warning(
                        "worker process %d (pid %d) still running: killing it",
                        child.index,
                        child.proc.pid,
                    )
                    child.proc.kill()
                continue
            if not self.stopping:
                self.reap(child, code, now)
            elif code != 0 and self.failure is None:
                self.failure = (
                    f"worker process {child.index} (pid {child.proc.pid}) exited with "
                    f"{describe_exit(code)} while draining"
                )
        return self.stopping and not self.alive()
