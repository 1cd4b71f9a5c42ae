"""ops/prometheus: the alert rules use only streamq's real metric names, each alert has promtool
unit tests that pass, and the scrape config finds the server and the workers."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from ops_support import OPS, PROMETHEUS_GENERATED, REPO, known_metric_names, metric_names_in

from tests.support.tools import promtool

PROMETHEUS = OPS / "prometheus"
SEVERITIES = {"critical", "warning", "info"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    groups = load(PROMETHEUS / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def markdown_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors = set()
    for line in path.read_text().splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_the_extractor_finds_names_and_misspellings() -> None:
    # The checks below are only as good as this: it must see through PromQL's syntax.
    expr = (
        'sum by (queue) (rate(streamq_jobs_failed_total{queue=~"$queue", name!="x{y}"}[5m]))'
        " / on (queue) group_left(name) streamq_jobs_complted_total offset 5m > 1e3"
        " and histogram_quantile(0.9, sum(rate(streamq_job_run_seconds_bucket[$__rate_interval]))"
        " by (le))"
    )
    assert metric_names_in(expr) == {
        "streamq_jobs_failed_total",
        "streamq_jobs_complted_total",
        "streamq_job_run_seconds_bucket",
    }
    assert metric_names_in("label_values(streamq_lane_depth, queue)") == {"streamq_lane_depth"}
    assert "streamq_jobs_complted_total" not in known_metric_names()


def test_known_names_cover_design_section_6() -> None:
    names = known_metric_names()
    for base in ("streamq_job_run_seconds", "streamq_job_wait_seconds"):
        assert {f"{base}_bucket", f"{base}_sum", f"{base}_count"} <= names
    assert all(name.startswith("streamq_") for name in names)


def test_every_metric_in_an_alert_is_a_known_name() -> None:
    known = known_metric_names() | PROMETHEUS_GENERATED
    for rule in alert_rules():
        used = metric_names_in(rule["expr"])
        assert used, f"{rule['alert']} reads no series"
        assert "__name__" not in rule["expr"], "name matchers would hide names from this check"
        unknown = used - known
        assert not unknown, f"{rule['alert']} uses unknown metrics {sorted(unknown)}"


def test_alerts_are_complete_and_point_at_the_runbook() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    anchors = markdown_anchors(REPO / "docs" / "operations.md")
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md"
        assert anchor in anchors, f"{rule['alert']}: no heading for #{anchor} in {page}"
    # The list: dead letters, failure rate, no workers, lag, reclaim storms.
    assert {
        "StreamqDeadLettersGrowing",
        "StreamqHighFailureRate",
        "StreamqNoWorkers",
        "StreamqOldestJobWaiting",
        "StreamqReclaimStorm",
    } <= set(names)


def test_failure_rate_threshold_is_ten_percent_over_five_minutes() -> None:
    (rule,) = [r for r in alert_rules() if r["alert"] == "StreamqHighFailureRate"]
    assert re.search(r"\)\s*>\s*0\.10?\b", rule["expr"])
    windows = set(re.findall(r"\[(\w+)\]", rule["expr"]))
    assert windows == {"5m"}


def test_every_alert_has_a_unit_test() -> None:
    tests = load(PROMETHEUS / "alerts_test.yml")
    assert tests["rule_files"] == ["alerts.yml"]
    tested: dict[str, bool] = {}
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            fires = bool(check["exp_alerts"])
            tested[check["alertname"]] = tested.get(check["alertname"], False) or fires
    assert tested == dict.fromkeys((rule["alert"] for rule in alert_rules()), True)


def test_promtool_unit_tests_pass() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_scrape_config_finds_server_and_workers() -> None:
    config = load(PROMETHEUS / "prometheus.yml")
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS / rule_file).is_file()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    server = jobs["streamq-server"]
    assert server["metrics_path"] == "/metrics"
    assert server["static_configs"][0]["targets"] == ["server:8000"]
    worker = jobs["streamq-worker"]
    assert worker["dns_sd_configs"][0]["port"] == 9108
    # The alerts' `up` rule matches these job names.
    (down,) = [r for r in alert_rules() if r["alert"] == "StreamqTargetDown"]
    pattern = re.search(r'job=~"([^"]+)"', down["expr"])
    assert pattern is not None
    assert all(re.fullmatch(pattern.group(1), job) for job in jobs)
