"""The worker processes of the ops files: compose and systemd run ``streamq worker --processes
N``, Prometheus scrapes the metrics port of each of the N processes (9108 + i), and systemd
waits out the supervisor's drain before its own SIGKILL."""

from __future__ import annotations

import re

import yaml
from ops_support import OPS
from test_deployment import SYSTEMD, compose, exec_start

from streamq.cli._supervise import DRAIN_MARGIN_S


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def scraped_worker_ports() -> set[int]:
    config = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "streamq-worker"]
    return {int(sd["port"]) for sd in job["dns_sd_configs"] if sd["names"] == ["worker"]}


def test_compose_workers_run_supervised_processes_that_are_all_scraped() -> None:
    worker = compose()["services"]["worker"]
    argv = worker["command"]
    processes, first = int(option(argv, "--processes")), int(option(argv, "--metrics-port"))
    assert processes > 1
    assert scraped_worker_ports() == set(range(first, first + processes))
    # Orphans of a killed worker process are reaped by an init, not left to the supervisor.
    assert worker["init"] is True
    # Docker's SIGKILL comes after stop_grace_period: later than the supervisor's own.
    grace = float(option(argv, "--grace"))
    assert int(worker["stop_grace_period"].removesuffix("s")) > grace + DRAIN_MARGIN_S


def test_systemd_worker_unit_runs_supervised_processes_and_waits_for_their_drain() -> None:
    unit = SYSTEMD / "streamq-worker@.service"
    argv = exec_start(unit)
    assert int(option(argv, "--processes")) >= 1
    text = unit.read_text()
    # Only the supervisor gets SIGTERM (it forwards it); the final SIGKILL reaches them all.
    assert re.search(r"^KillMode=mixed$", text, re.M)
    (stop,) = re.findall(r"^TimeoutStopSec=(\d+)$", text, re.M)
    assert int(stop) > float(option(argv, "--grace")) + DRAIN_MARGIN_S
