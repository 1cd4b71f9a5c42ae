"""The light demo workload ``streamq run`` starts beside the processors: a dashboard analysis
of a simulated wallet every couple of seconds, an advanced similarity flow every ten (a
copy-trader, the wallet it copies and two strangers), and the Polymarket schedules — so a
newcomer sees jobs flow, progress, retries and results within a minute.

It runs against any provider set; wallets come from the simulated world when there is one,
else from ``PROCESSORS_DEMO_WALLETS`` (comma-separated).
"""

from __future__ import annotations

import logging
import os
import random
import secrets

import anyio

import streamq
from processors.errors import ProcessorsError
from processors.jobs.analysis import start_dashboard, start_similarity_flow
from processors.jobs.coordination import ensure_setup
from processors.runtime import Runtime, runtime_of

__all__ = ["demo_workload"]

log = logging.getLogger(__name__)

DASHBOARD_EVERY = 2.0
SIMILARITY_EVERY = 10.0


def _population(rt: Runtime) -> tuple[list[str], dict[str, str]]:
    """Wallets to analyse, and copier -> leader pairs when the world knows them."""
    world = getattr(rt.providers.chain, "world", None)
    if world is not None:
        return list(world.wallets), dict(world.leaders)
    listed = [w.strip() for w in os.environ.get("PROCESSORS_DEMO_WALLETS", "").split(",")]
    return [w for w in listed if w], {}


async def demo_workload(app: streamq.App, *, rounds: int | None = None) -> None:
    """Produces the demo's requests until cancelled (or for ``rounds`` dashboard requests)."""
    rt = runtime_of(app)
    await ensure_setup(app)
    wallets, leaders = _population(rt)
    if not wallets:
        log.warning("demo workload: no wallets to analyse (set PROCESSORS_DEMO_WALLETS)")
        return
    rng = random.Random()
    n = 0
    while rounds is None or n < rounds:
        n += 1
        wallet = rng.choice(wallets)
        try:
            started = await start_dashboard(rt, wallet, request_id=f"demo-{secrets.token_hex(4)}")
            log.info(
                "demo: dashboard analysis %s of %s (%s)",
                started.handle.id if started.handle else "-",
                wallet[:8],
                "sync first" if started.needs_sync else "fresh, no sync",
            )
            if n % int(SIMILARITY_EVERY / DASHBOARD_EVERY) == 1:
                group = _similarity_group(rng, wallets, leaders)
                flow, needing = await start_similarity_flow(
                    rt, group, request_id=f"demo-{secrets.token_hex(4)}"
                )
                log.info(
                    "demo: similarity flow %s over %d wallets (%d to deep-sync)",
                    flow.id,
                    len(group),
                    len(needing),
                )
        except (ProcessorsError, streamq.StreamqError) as exc:
            log.warning("demo: request failed: %s", exc)
        await anyio.sleep(DASHBOARD_EVERY)


def _similarity_group(rng: random.Random, wallets: list[str], leaders: dict[str, str]) -> list[str]:
    group: list[str] = []
    if leaders:
        copier = rng.choice(list(leaders))
        group = [copier, leaders[copier]]
    strangers = [w for w in wallets if w not in group]
    group += rng.sample(strangers, k=min(len(strangers), 4 - len(group)))
    return group
