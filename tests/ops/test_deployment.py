"""ops/compose.yaml, ops/Dockerfile and ops/systemd: files that exist, secrets that agree with
each other, and commands the streamq CLI actually accepts. (No Docker engine here, so nothing
is built or started; these catch the mismatches that would break `docker compose up`.)"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from ops_support import OPS, REPO

from tests.support.tools import promtool as require_promtool

COMPOSE = OPS / "compose.yaml"
SYSTEMD = OPS / "systemd"
_DEFAULTS = re.compile(r"\$\{(\w+):-([^}]*)\}")


def with_defaults(text: str) -> str:
    """Compose/systemd-style `${VAR:-default}` with every variable unset."""
    return _DEFAULTS.sub(lambda match: match.group(2), text)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(with_defaults(COMPOSE.read_text()))
    return loaded


def acl_password_hash(user: str) -> str:
    for line in (OPS / "redis" / "users.acl").read_text().splitlines():
        words = line.split()
        if words[:2] == ["user", user]:
            (digest,) = [word[1:] for word in words if word.startswith("#")]
            return digest
    raise AssertionError(f"no user {user} in users.acl")


def cli_accepts(argv: list[str]) -> None:
    """Parses `argv` with the real `streamq` argument parser (skips if the command is not in it)."""
    from streamq import cli

    parser = cli.build_parser()
    commands = next(
        action.choices for action in parser._actions if isinstance(action.choices, dict)
    )
    if argv[0] not in commands:
        pytest.skip(f"`streamq {argv[0]}` is not in the CLI yet")
    parser.parse_args(argv)


def test_compose_has_the_whole_stack() -> None:
    services = compose()["services"]
    assert {"redis", "server", "worker", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (OPS / source).exists(), f"{name} mounts missing {source}"
    build = services["server"]["build"]
    assert (OPS / build["context"] / build["dockerfile"]).resolve() == OPS / "Dockerfile"


def test_redis_runs_the_shipped_config_with_aof() -> None:
    redis = compose()["services"]["redis"]
    command = redis["command"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in redis["volumes"]}
    conf = command[1]
    assert (OPS / mounts[conf]).resolve() == OPS / "redis" / "redis.conf"
    acl = command[command.index("--aclfile") + 1]
    assert (OPS / mounts[acl]).resolve() == OPS / "redis" / "users.acl"
    data = command[command.index("--dir") + 1]
    assert data in mounts and not mounts[data].startswith(".")  # a named volume
    text = (OPS / "redis" / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", text, re.M)
    assert re.search(r"^appendfsync everysec$", text, re.M)
    assert re.search(r"^maxmemory-policy noeviction$", text, re.M)


def test_streamq_connects_as_the_acl_user_with_its_password() -> None:
    services = compose()["services"]
    for name in ("server", "worker"):
        url = urlsplit(services[name]["environment"]["STREAMQ_REDIS_URL"])
        assert (url.username, url.hostname, url.port) == ("streamq", "redis", 6379)
        assert url.password is not None
        assert hashlib.sha256(url.password.encode()).hexdigest() == acl_password_hash("streamq")
    healthcheck = " ".join(services["redis"]["healthcheck"]["test"])
    assert "--user streamq" in healthcheck
    password = services["redis"]["environment"]["STREAMQ_REDIS_PASSWORD"]
    assert hashlib.sha256(password.encode()).hexdigest() == acl_password_hash("streamq")


def test_prometheus_gets_a_read_token_the_server_accepts() -> None:
    from server.settings import hash_token, parse_tokens

    spec = compose()
    server_env = spec["services"]["server"]["environment"]
    tokens = parse_tokens(server_env["STREAMQ_API_TOKENS"])
    prometheus = spec["services"]["prometheus"]
    (config,) = prometheus["configs"]
    secret = spec["configs"][config["source"]]["content"]
    (token,) = [t for t in tokens if t.digest == hash_token(secret)]
    assert "read" in token.scopes
    scrape = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "streamq-server"]
    assert job["authorization"]["credentials_file"] == config["target"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    assert (OPS / mounts["/etc/prometheus"]).resolve() == OPS / "prometheus"


def test_server_and_worker_commands_parse_and_match_the_scrape_config() -> None:
    services = compose()["services"]
    worker = services["worker"]["command"]
    assert worker[worker.index("--metrics-port") + 1] == "9108"
    assert worker[worker.index("--metrics-host") + 1] == "0.0.0.0"
    assert services["server"]["environment"]["STREAMQ_PORT"] == "8000"
    assert services["server"]["environment"]["STREAMQ_HOST"] == "0.0.0.0"
    cli_accepts(worker)
    cli_accepts(services["server"]["command"])


def test_promtool_accepts_the_scrape_config(tmp_path: Path) -> None:
    promtool = require_promtool()
    # The token file only exists inside the Prometheus container; point at a stand-in.
    config = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())
    token = tmp_path / "token"
    token.write_text("stand-in")
    for job in config["scrape_configs"]:
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(token)
    shutil.copy(OPS / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dockerfile_instructions() -> list[tuple[str, str]]:
    lines = (OPS / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_installs_every_package_and_runs_streamq() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert any(op == "RUN" and "pip install ." in arg for op, arg in instructions)
    assert ("ENTRYPOINT", '["streamq"]') in instructions
    copied = {
        source.rstrip("/")
        for op, arg in instructions
        if op == "COPY"
        for source in arg.split()[:-1]
        if not source.startswith("--")
    }
    for source in copied:
        assert (REPO / source).exists(), f"COPY of missing {source}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"pyproject.toml", project["project"]["readme"]} <= copied
    ignore = (OPS / "Dockerfile.dockerignore").read_text().split()
    assert {
        f"!{source}/" if (REPO / source).is_dir() else f"!{source}" for source in copied
    } <= set(ignore)
    cmd = dict(instructions)["CMD"]
    cli_accepts(yaml.safe_load(cmd))


def exec_start(unit: Path) -> list[str]:
    """The ExecStart command line with the unit's Environment= defaults (every variable it uses
    has one, STREAMQ_APP included) and %i=9108."""
    text = unit.read_text()
    env = dict(re.findall(r"^Environment=(\w+)=(.*)$", text, re.M))
    (line,) = re.findall(r"^ExecStart=(.*)$", text, re.M)
    line = line.replace("%i", "9108")
    line = re.sub(r"\$\{(\w+)\}", lambda match: env[match.group(1)], line)
    return shlex.split(line)


@pytest.mark.parametrize("unit", ["streamq-server.service", "streamq-worker@.service"])
def test_systemd_units_verify_and_parse(unit: str, tmp_path: Path) -> None:
    argv = exec_start(SYSTEMD / unit)
    assert argv[0] == "/opt/streamq/bin/streamq"
    cli_accepts(argv[1:])
    text = (SYSTEMD / unit).read_text()
    assert "EnvironmentFile=/etc/streamq/streamq.env" in text
    assert re.search(r"^KillSignal=SIGTERM$", text, re.M)
    if unit.startswith("streamq-worker"):
        assert argv[argv.index("--metrics-port") + 1] == "9108"
        grace = float(argv[argv.index("--grace") + 1])
        (stop,) = re.findall(r"^TimeoutStopSec=(\d+)$", text, re.M)
        assert int(stop) > grace  # systemd must not SIGKILL a worker still handing jobs back
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    # verify wants the binary to exist: point ExecStart at this checkout's streamq.
    binary = shutil.which("streamq") or str(REPO / ".venv" / "bin" / "streamq")
    if not Path(binary).exists():
        pytest.skip("no streamq executable to stand in for /opt/streamq/bin/streamq")
    copy = tmp_path / unit
    copy.write_text(text.replace("/opt/streamq/bin/streamq", binary))
    result = subprocess.run(
        [analyze, "verify", copy.name], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
