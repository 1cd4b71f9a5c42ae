"""``streamq redis``: the embedded server of this directory, in the foreground."""

from __future__ import annotations

import argparse
import signal

from streamq._embedded import Embedded
from streamq.cli._output import CliError


def command(args: argparse.Namespace) -> int:
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
