"""``serve`` (what ``streamq serve`` runs) prints the access log naming the caller and the
audit trail on its console, as uvicorn's own access log did before it was replaced."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
from server_support import bearer, secret, token_spec

from streamq._embedded import free_port

SCRIPT = """
import sys
sys.path.insert(0, sys.argv[4])
from server_support import register_tasks
from server import ServerSettings, serve
from streamq import App
app = App("logs", redis_url=sys.argv[1])
register_tasks(app, "logs-q", "logs-other")
settings = ServerSettings(stats_sample_seconds=0).with_tokens(sys.argv[3])
serve(app, "127.0.0.1", int(sys.argv[2]), settings)
"""


def test_serve_logs_access_and_audit_lines(valkey_url: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SCRIPT,
            valkey_url,
            str(port),
            token_spec("ops:admin"),
            str(Path(__file__).parent),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        r = httpx.post(f"{url}/v1/queues/logs-q/pause", headers=bearer("ops"), timeout=5)
        assert r.status_code == 200
        httpx.post(f"{url}/v1/queues/logs-q/resume", headers=bearer("ops"), timeout=5)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode(errors="replace")
    assert '"POST /v1/queues/logs-q/pause" 200' in output and "caller=ops" in output, output
    assert "audit action=pause_queue caller=ops queue=logs-q" in output, output
    assert secret("ops") not in output
