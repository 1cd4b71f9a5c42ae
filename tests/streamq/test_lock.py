"""Locks: mutual exclusion under contention, fencing, owner-only release, expiry of a dead holder."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable

import pytest

from streamq import App, Lock, LockError, _keys


@pytest.fixture
async def lock_app(
    app_factory: Callable[..., App], uniq: Callable[[str], str]
) -> AsyncIterator[tuple[App, str]]:
    app = app_factory()
    await app.connect()
    name = uniq("lock")
    yield app, name
    await app.redis.delete(_keys.lock(name), _keys.lock_fence(name))


async def test_fifty_contenders_never_overlap(lock_app: tuple[App, str]) -> None:
    app, name = lock_app
    inside = 0
    most = 0
    fences: list[int] = []

    async def contend() -> None:
        nonlocal inside, most
        async with Lock(app, name, ttl=5.0, timeout=30.0) as lock:
            inside += 1
            most = max(most, inside)
            fences.append(lock.fence)
            # Yield to the event loop while holding: overlap would show up here.
            await asyncio.sleep(0.002)
            inside -= 1

    await asyncio.gather(*(contend() for _ in range(50)))
    assert most == 1
    assert len(fences) == 50
    assert fences == sorted(fences) and len(set(fences)) == 50


async def test_non_blocking_and_timeout_fail_while_held(lock_app: tuple[App, str]) -> None:
    app, name = lock_app
    async with Lock(app, name, ttl=5.0) as held:
        assert held.locked
        other = Lock(app, name, ttl=5.0, blocking=False)
        assert await other.acquire() is False
        with pytest.raises(LockError):
            async with Lock(app, name, ttl=5.0, blocking=False):
                pass
        started = time.monotonic()
        with pytest.raises(LockError, match="not acquired within"):
            async with Lock(app, name, ttl=5.0, timeout=0.3):
                pass
        assert 0.25 < time.monotonic() - started < 2.0
    # Released on exit: free again.
    async with Lock(app, name, ttl=5.0, blocking=False) as again:
        assert again.fence == held.fence + 1


async def test_lock_is_renewed_beyond_its_ttl_while_held(lock_app: tuple[App, str]) -> None:
    app, name = lock_app
    async with Lock(app, name, ttl=0.3):
        await asyncio.sleep(1.0)
        assert await Lock(app, name, ttl=0.3, blocking=False).acquire() is False


async def test_only_the_owner_releases(lock_app: tuple[App, str]) -> None:
    app, name = lock_app
    first = Lock(app, name, ttl=0.3)
    await first.acquire()
    # Simulate a stalled holder: stop its renewals and let the lease run out.
    assert first._renewer is not None
    first._renewer.cancel()
    await asyncio.sleep(0.5)
    second = Lock(app, name, ttl=5.0, blocking=False)
    assert await second.acquire()
    # The stale owner's release must not free the new owner's lock.
    assert await first.release() is False
    assert await app.redis.exists(_keys.lock(name)) == 1
    assert second.fence > first.fence
    assert await second.release() is True


async def test_lost_lock_raises_on_exit(lock_app: tuple[App, str]) -> None:
    app, name = lock_app
    with pytest.raises(LockError, match="lost"):
        async with Lock(app, name, ttl=0.3) as lock:
            assert lock._renewer is not None
            lock._renewer.cancel()
            await asyncio.sleep(0.5)
            # Someone else takes it meanwhile.
            assert await Lock(app, name, ttl=5.0, blocking=False).acquire()


async def test_a_killed_holder_releases_by_ttl(lock_app: tuple[App, str]) -> None:
    app, name = lock_app
    code = textwrap.dedent(
        f"""
        import asyncio, sys
        from streamq import App, Lock

        async def main():
            app = App("lock-holder", redis_url={app.url!r})
            lock = Lock(app, {name!r}, ttl=1.0)
            await lock.acquire()
            print("held", lock.fence, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("held"), line
        holder_fence = int(line.split()[1])
        # Held and renewed by the live process for longer than its ttl.
        await asyncio.sleep(1.3)
        assert await Lock(app, name, ttl=1.0, blocking=False).acquire() is False
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 5)
        killed_at = time.monotonic()
        async with Lock(app, name, ttl=1.0, timeout=5.0) as lock:
            waited = time.monotonic() - killed_at
            assert lock.fence == holder_fence + 1
        # Free only after the dead holder's lease ran out (at most its ttl).
        assert 0.0 < waited < 2.5
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
