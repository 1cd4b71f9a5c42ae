"""ops/grafana: the dashboard queries only streamq's real metric names, shows every one of them,
parses as PromQL, lays its panels out without overlap, and is provisioned where compose mounts it."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from ops_support import OPS, known_metric_names, metric_names_in

from tests.support.tools import promtool as require_promtool

GRAFANA = OPS / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "streamq.json"
# Grafana's own macros, replaced by concrete values when the PromQL is checked by promtool.
MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$queue": ".*"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield (
                f"variable {variable['name']}",
                query["query"] if isinstance(query, dict) else query,
            )


def test_every_queried_metric_is_a_known_name() -> None:
    known = known_metric_names()
    for where, expr in queries(dashboard()):
        used = metric_names_in(expr)
        assert used, f"{where} reads no series: {expr}"
        unknown = used - known
        assert not unknown, f"{where} queries unknown metrics {sorted(unknown)}"


def test_every_metric_is_on_the_dashboard() -> None:
    shown = set().union(*(metric_names_in(expr) for _, expr in queries(dashboard())))
    expected = {name for name in known_metric_names() if not name.endswith(("_sum", "_count"))}
    assert expected - shown == set()


def test_latency_panels_use_histogram_quantile_over_buckets() -> None:
    exprs = [expr for _, expr in queries(dashboard())]
    for histogram in ("streamq_job_run_seconds", "streamq_job_wait_seconds"):
        quantiles = {
            match.group(1)
            for expr in exprs
            if f"{histogram}_bucket" in expr
            for match in [re.search(r"histogram_quantile\((0\.\d+)", expr)]
            if match
        }
        assert {"0.5", "0.95", "0.99"} <= quantiles, histogram
        assert all("le" in expr for expr in exprs if f"{histogram}_bucket" in expr)


def test_panels_cover_the_issue_topics() -> None:
    titles = " | ".join(panel["title"].lower() for panel in panels(dashboard()))
    for topic in (
        "jobs per second",
        "failures",
        "run time",
        "queue wait",
        "lane depth",
        "dead letters",
        "workers alive",
        "sse clients",
        "reclaimed",
    ):
        assert topic in titles, topic


def test_layout_ids_and_datasources() -> None:
    board = dashboard()
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels(board):
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
    assert board["uid"] and len(board["uid"]) <= 40


def test_provisioning_matches_compose() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "streamq.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (datasource,) = source["datasources"]
    assert datasource["type"] == "prometheus"
    compose = yaml.safe_load((OPS / "compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    assert (OPS / mounts[path]).resolve() == DASHBOARD.parent
    assert (OPS / mounts["/etc/grafana/provisioning"]).resolve() == GRAFANA / "provisioning"
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = require_promtool()
    rules = []
    for index, (_, expr) in enumerate(queries(dashboard())):
        if expr.startswith("label_values("):
            continue
        for macro, value in MACROS.items():
            expr = expr.replace(macro, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
