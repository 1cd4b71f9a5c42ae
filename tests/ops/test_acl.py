"""ops/redis/redis.conf and the ACL files: a server started with them keeps AOF on, never evicts,
and lets the `streamq` user run exactly what streamq needs on sq:* keys and nothing dangerous."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from ops_support import OPS, free_ports, valkey_server_binary
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

import streamq

REDIS_DIR = OPS / "redis"
# The development passwords in the shipped ACL files (docs/operations.md says to change them).
STREAMQ_PASSWORD = "streamq-dev-password"
ADMIN_PASSWORD = "admin-dev-password"
# INFO is in @dangerous (it can reveal the configuration) but is read-only; streamq reads the
# server version and memory figures from it, so it is the one dangerous command granted.
DANGEROUS_ALLOWED = frozenset({"info"})


@dataclass(frozen=True)
class Server:
    port: int
    flavour: str  # "valkey" or "redis70"

    def connect(self, user: str | None, password: str | None) -> redis.Redis:
        # No retries: a refused login must fail at once, not after redis-py's backoff.
        return redis.Redis(
            port=self.port,
            username=user,
            password=password,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
        )


def start(binary: str, acl: Path, flavour: str, tmp_path: Path, *extra: str) -> Iterator[Server]:
    (port,) = free_ports(1)
    data = tmp_path / flavour
    data.mkdir()
    log = data / "server.log"
    proc = subprocess.Popen(
        [
            binary,
            str(REDIS_DIR / "redis.conf"),
            "--port",
            str(port),
            "--dir",
            str(data),
            "--aclfile",
            str(acl),
            "--logfile",
            str(log),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read().decode() if proc.stdout else ""
                logged = log.read_text() if log.exists() else ""
                pytest.fail(f"{flavour} refused the shipped config:\n{output}\n{logged}")
            try:
                Server(port, flavour).connect("admin", ADMIN_PASSWORD).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield Server(port, flavour)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="module", params=["valkey", "redis70"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("acl")
    if request.param == "valkey":
        yield from start(valkey_server_binary(), REDIS_DIR / "users.acl", "valkey", tmp_path)
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server (Redis 7.0) binary on PATH")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    if "v=7.0." not in version.stdout:
        pytest.skip(f"redis-server is not 7.0: {version.stdout.strip()}")
    yield from start(binary, REDIS_DIR / "users-redis70.acl", "redis70", tmp_path)


def test_config_keeps_aof_on_and_never_evicts(server: Server) -> None:
    admin = server.connect("admin", ADMIN_PASSWORD)
    config = admin.config_get("*")
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["maxmemory-policy"] == "noeviction"
    assert int(config["maxmemory"]) > 0  # noeviction only bites with a limit
    assert config["bind"].split()[0] == "127.0.0.1"


def test_default_user_is_off(server: Server) -> None:
    with pytest.raises(redis.AuthenticationError):
        server.connect(None, None).set("sq:{q}:x", "1")
    with pytest.raises(redis.AuthenticationError):
        server.connect("streamq", "wrong-password").ping()


def test_streamq_user_runs_what_streamq_needs(server: Server) -> None:
    r = server.connect("streamq", STREAMQ_PASSWORD)
    lane = "sq:{acl-q}:lane:normal"
    r.client_setname("streamq-test")
    assert isinstance(r.client_id(), int)
    assert r.ping()
    assert r.info("server")["redis_version"]
    assert len(r.time()) == 2

    entry = r.xadd(lane, {"job": "j1"})
    r.xgroup_create(lane, "workers", id="0", mkstream=True)
    delivered = r.xreadgroup("workers", "w1", {lane: ">"}, count=10)
    assert delivered[0][1][0][0] == entry
    assert r.xpending(lane, "workers")["pending"] == 1
    assert r.xautoclaim(lane, "workers", "w2", min_idle_time=0)[1][0][0] == entry
    assert r.xack(lane, "workers", entry) == 1
    assert r.xlen(lane) == 1
    assert r.xinfo_groups(lane)[0]["name"] == "workers"
    assert r.xtrim(lane, maxlen=0, approximate=False) == 1

    r.hset("sq:{acl-q}:job:j1", mapping={"state": "queued", "attempt": "0"})
    assert r.hincrby("sq:{acl-q}:job:j1", "attempt", 1) == 1
    assert r.hgetall("sq:{acl-q}:job:j1") == {"state": "queued", "attempt": "1"}
    r.zadd("sq:{acl-q}:delayed", {"j2": 10})
    assert r.zrangebyscore("sq:{acl-q}:delayed", 0, 20) == ["j2"]
    r.sadd("sq:queues", "acl-q")
    assert r.smembers("sq:queues") == {"acl-q"}
    assert r.set("sq:{acl-q}:lock:w", "token", nx=True, px=1000)
    assert r.pexpire("sq:{acl-q}:job:j1", 60_000)
    with r.pipeline(transaction=True) as pipe:
        pipe.incr("sq:{acl-q}:n").get("sq:{acl-q}:n")
        assert pipe.execute() == [1, "1"]

    # A script like streamq's: several keys of one queue, moving a job between structures.
    script = r.register_script(
        "redis.call('HSET', KEYS[2], 'state', ARGV[2])\n"
        "redis.call('ZREM', KEYS[3], ARGV[1])\n"
        "return redis.call('XADD', KEYS[1], '*', 'job', ARGV[1])"
    )
    keys = [lane, "sq:{acl-q}:job:j2", "sq:{acl-q}:delayed"]
    assert script(keys=keys, args=["j2", "queued"])  # EVALSHA, falling back to SCRIPT LOAD
    assert r.script_exists(script.sha) == [True]
    assert r.evalsha(script.sha, 3, *keys, "j2", "queued")
    assert r.hget("sq:{acl-q}:job:j2", "state") == "queued"
    if server.flavour == "valkey":
        assert r.execute_command("WAITAOF", 1, 0, 1000) == [1, 0]


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "*"),
        ("CONFIG", "SET", "appendonly", "no"),
        ("KEYS", "*"),
        ("SCAN", "0"),
        ("DEBUG", "SLEEP", "0"),
        ("SHUTDOWN", "NOSAVE"),
        ("SCRIPT", "FLUSH"),
        ("CLIENT", "KILL", "ID", "1"),
        ("ACL", "LIST"),
        ("MONITOR",),
        ("REPLICAOF", "127.0.0.1", "1"),
        ("SWAPDB", "0", "1"),
    ],
)
def test_streamq_user_is_refused_dangerous_commands(server: Server, command: tuple[str]) -> None:
    r = server.connect("streamq", STREAMQ_PASSWORD)
    # DEBUG is refused by enable-debug-command before the ACL is even consulted.
    with pytest.raises(redis.ResponseError, match=r"(?i)noperm|no permissions|not allowed"):
        r.execute_command(*command)


def test_streamq_user_cannot_touch_keys_outside_sq(server: Server) -> None:
    r = server.connect("streamq", STREAMQ_PASSWORD)
    admin = server.connect("admin", ADMIN_PASSWORD)
    admin.set("other:app:key", "kept")
    for attempt in (
        lambda: r.set("other:app:key", "x"),
        lambda: r.get("other:app:key"),
        lambda: r.delete("other:app:key"),
        lambda: r.xadd("jobs", {"a": "1"}),
        lambda: r.hset("session:1", "a", "1"),
        lambda: r.eval("return redis.call('SET', KEYS[1], 'x')", 1, "other:app:key"),
        # A key the script does not declare is checked when the script touches it.
        lambda: r.eval("return redis.call('DEL', 'other:app:key')", 1, "sq:{q}:x"),
    ):
        with pytest.raises(redis.ResponseError, match=r"(?i)noperm|no permissions|can't access"):
            attempt()
    assert admin.get("other:app:key") == "kept"


def dryrun_args(server: Server, name: str) -> list[str]:
    """A well-formed-enough call of `name` ("cmd" or "cmd|sub") for ACL DRYRUN, with sq:* keys."""
    parts = name.split("|")
    admin = server.connect("admin", ADMIN_PASSWORD)
    info = admin.command()
    arity = int(info[parts[0]]["arity"])
    if len(parts) > 1:
        subs = {sub[0]: sub for sub in info[parts[0]].get("subcommands", [])}
        sub = subs.get(name)
        if sub is not None:
            arity = int(sub[1])
    args = [*parts]
    while len(args) < abs(arity):
        args.append("sq:{dry}:k")
    return args


def test_no_dangerous_command_but_info_is_granted(server: Server) -> None:
    admin = server.connect("admin", ADMIN_PASSWORD)
    dangerous = sorted(admin.acl_cat("dangerous"))
    assert "flushall" in dangerous and "keys" in dangerous  # the category is what we think
    allowed = set()
    for name in dangerous:
        try:
            reply = admin.execute_command("ACL", "DRYRUN", "streamq", *dryrun_args(server, name))
        except redis.ResponseError as exc:
            pytest.fail(f"ACL DRYRUN {name}: {exc}")
        if reply == "OK":
            allowed.add(name)
    assert allowed == DANGEROUS_ALLOWED


def test_acl_files_differ_only_in_commands_redis70_lacks() -> None:
    modern = (REDIS_DIR / "users.acl").read_text().split()
    legacy = (REDIS_DIR / "users-redis70.acl").read_text().split()
    assert [word for word in modern if word not in legacy] == ["+waitaof", "+client|setinfo"]
    assert [word for word in legacy if word not in modern] == []


async def test_streamq_runs_end_to_end_as_the_streamq_user(
    server: Server,
    run_worker: Callable[..., contextlib.AbstractAsyncContextManager[streamq.Worker]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The real broker on the restricted user: any command the core needs and the ACL lacks
    # surfaces here as a failed job or a NOPERM in a background loop's log.
    url = f"redis://streamq:{STREAMQ_PASSWORD}@127.0.0.1:{server.port}/0"
    app = streamq.App(f"acl-{secrets.token_hex(3)}", redis_url=url)
    queue = f"acl-e2e-{secrets.token_hex(3)}"

    @app.task("double", queue=queue)
    async def double(ctx: streamq.Context, n: int) -> int:
        await ctx.progress(50, "half way")
        return n * 2

    @app.task("reject", queue=queue, max_attempts=1)
    async def reject(ctx: streamq.Context, n: int) -> int:
        raise streamq.Fatal("BAD_INPUT: rejected on purpose")

    try:
        async with run_worker(app, concurrency=4):
            job = await app.enqueue("double", 21, id="acl-job-1")
            assert await job.result(timeout=20) == 42
            assert (await app.enqueue("double", 21, id="acl-job-1")).deduplicated
            delayed = await app.enqueue("double", 2, delay=0.2, priority="high")
            assert await delayed.result(timeout=20) == 4
            dead = await app.enqueue("reject", 1)
            with pytest.raises(streamq.JobFailed):
                await dead.result(timeout=20)
            assert [letter.job for letter in await app.dead_letters(queue)] == [dead.id]
            await app.pause(queue)
            assert (await app.stats(queue)).paused
            await app.resume(queue)
            stats = await app.stats(queue)
            assert stats.dead == 1 and not stats.paused
            assert stats.workers == 1  # the heartbeat got through the ACL
            assert await app.replay_dead(queue) == 1
            # The replayed job fails again and returns to the dead letters.
            for _ in range(200):
                if [letter.job for letter in await app.dead_letters(queue)] == [dead.id]:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the replayed job never came back to the dead letters")
            assert queue in await app.queue_names()
            events = await app.read_events(queue, after="0-0", count=100)
            assert {"queued", "active", "progress", "completed", "dead"} <= {
                event.type for event in events
            }
    finally:
        await app.close()
    refused = [r.getMessage() for r in caplog.records if "perm" in r.getMessage().lower()]
    assert refused == []


async def test_orchestration_runs_as_the_streamq_user(
    server: Server,
    run_worker: Callable[..., contextlib.AbstractAsyncContextManager[streamq.Worker]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Flows, locks, rate limits, the result cache and recurring jobs use commands of their own
    # (lists for a flow's children, ZPOPMAX for a rate-limit refund, ...): all under the ACL.
    url = f"redis://streamq:{STREAMQ_PASSWORD}@127.0.0.1:{server.port}/0"
    app = streamq.App(f"acl-{secrets.token_hex(3)}", redis_url=url)
    queue = f"acl-orch-{secrets.token_hex(3)}"

    @app.task("child", queue=queue)
    async def child(ctx: streamq.Context, n: int) -> int:
        return n * 10

    @app.task("parent", queue=queue)
    async def parent(ctx: streamq.Context, n: int) -> list[int]:
        async with streamq.Lock(app, f"acl-lock-{queue}", ttl=5):
            return sorted(c.result for c in await ctx.children())

    @app.task("tick", queue=queue)
    async def tick(ctx: streamq.Context, n: int) -> int:
        return n

    app.schedule("tick", 1, every=1, id=f"acl-tick-{queue}")
    try:
        await app.rate_limit(queue, 50, per=1.0)
        async with run_worker(app, concurrency=4):
            flow = streamq.Flow(
                name="parent",
                payload=0,
                queue=queue,
                children=[streamq.Flow(name="child", payload=i, queue=queue) for i in range(3)],
            )
            root = await app.enqueue_flow(flow)
            assert await root.result(timeout=20) == [0, 10, 20]
            cached = await streamq.cached(
                app, f"acl-{queue}", 30, streamq.EnqueueRequest(name="child", payload=7), timeout=20
            )
            assert cached == 70
            for _ in range(100):
                if (await app.stats(queue)).totals.get("completed", 0) >= 6:
                    break  # 3 children, the parent, the cached job and at least one tick
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the scheduled tick never ran")
    finally:
        await app.close()
    refused = [r.getMessage() for r in caplog.records if "perm" in r.getMessage().lower()]
    assert refused == []


def test_cluster_client_works_as_the_streamq_user(tmp_path: Path) -> None:
    # A one-node cluster is enough to exercise what the cluster client needs at start-up
    # (CLUSTER SLOTS/SHARDS, COMMAND) and during operation, under the streamq ACL.
    (bus_port,) = free_ports(1)
    extra = ("--cluster-enabled", "yes", "--cluster-port", str(bus_port))
    nodes = start(valkey_server_binary(), REDIS_DIR / "users.acl", "cluster", tmp_path, *extra)
    node = next(nodes)
    try:
        admin = node.connect("admin", ADMIN_PASSWORD)
        admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        for _ in range(100):
            if admin.cluster("info")["cluster_state"] == "ok":
                break
            time.sleep(0.05)
        rc = RedisCluster(
            host="127.0.0.1",
            port=node.port,
            username="streamq",
            password=STREAMQ_PASSWORD,
            decode_responses=True,
        )
        try:
            assert rc.xadd("sq:{c}:lane:normal", {"job": "1"})
            assert (
                rc.eval(
                    "redis.call('HSET', KEYS[1], 'state', 'queued'); return redis.call('XLEN', KEYS[2])",
                    2,
                    "sq:{c}:job:1",
                    "sq:{c}:lane:normal",
                )
                == 1
            )
            with pytest.raises(redis.ResponseError, match=r"(?i)noperm|no permissions"):
                rc.set("elsewhere", "x")
        finally:
            rc.close()
    finally:
        nodes.close()
