"""A private Valkey a test may freeze (SIGSTOP), thaw (SIGCONT) or kill: the shared servers
of the session are never touched."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streamq._embedded import free_port, start_server


@dataclass
class PrivateValkey:
    proc: subprocess.Popen[bytes]
    url: str
    frozen: bool = False

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        self.thaw()
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def private_valkey(directory: Path) -> Iterator[PrivateValkey]:
    port = free_port()
    server = PrivateValkey(proc=start_server(directory, port), url=f"redis://127.0.0.1:{port}/0")
    try:
        yield server
    finally:
        server.stop()
