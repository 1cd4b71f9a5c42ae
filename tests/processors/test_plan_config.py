from __future__ import annotations

import re

from processors import config, ids

ID_RULE = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")
WALLET = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"


def test_design_queue_layout_and_plan_values() -> None:
    assert set(config.QUEUES) == {
        "wallet-operations",
        "analysis-operations",
        "enrichment-operations",
        "polymarket-whale-updates",
        "polymarket-anomaly-batch",
        "polymarket-analysis",
        "polymarket-alerts",
    }
    jobs = config.JOBS
    for name, queue in [
        ("sync-wallet", "wallet-operations"),
        ("fetch-balances", "wallet-operations"),
        ("analyze-pnl", "analysis-operations"),
        ("analyze-behavior", "analysis-operations"),
        ("analyze-similarity", "analysis-operations"),
        ("dashboard-wallet-analysis", "analysis-operations"),
        ("enrich-token-balances", "enrichment-operations"),
    ]:
        assert jobs[name].queue == queue
    assert jobs["sync-wallet"].timeout == 600 and jobs["sync-wallet"].max_attempts == 3
    assert jobs["dashboard-wallet-analysis"].priority == "critical"
    assert jobs["dashboard-wallet-analysis"].timeout == 900
    assert jobs["update-all-whales"].cron == "0 * * * *"
    assert jobs["batch-detection"].every == 30 and jobs["batch-detection"].timeout == 45
    assert config.QUEUES["polymarket-whale-updates"].concurrency == 1
    assert config.CACHE.balances_ttl == 30 and config.RATE_LIMITS.helius_rps == 10
    lanes = {"critical", "high", "normal", "low", "bulk"}
    assert all(j.priority in lanes and j.queue in config.QUEUES for j in jobs.values())
    assert set(config.LANE_OF_PRIORITY.values()) == lanes


def test_job_ids_are_deterministic_and_valid() -> None:
    made = [
        ids.sync_job_id(WALLET, "req-1"),
        ids.pnl_job_id(WALLET),
        ids.similarity_job_id([WALLET, "B" * 44], "req-1"),
        ids.dashboard_job_id(WALLET, "req-1"),
        ids.balances_job_id(WALLET),
        ids.enrichment_job_id([WALLET], "req-1"),
    ]
    assert all(ID_RULE.match(i) for i in made)
    assert ids.sync_job_id(WALLET, "req-1") == ids.sync_job_id(WALLET, "req-1")
    assert ids.sync_job_id(WALLET, "req-1") != ids.sync_job_id(WALLET, "req-2")
    # the wallet order does not matter for a similarity request
    assert ids.similarity_job_id(["a", "b"], "r") == ids.similarity_job_id(["b", "a"], "r")
    assert ids.pnl_job_id(WALLET) == f"pnl-{WALLET}-standalone"
