"""The simulated Polymarket: markets with probability paths, traders, whales and anomalies.

A pure function of ``(seed, now)``. The last ``window_hours`` hold the trades of regular traders
(each with a typical trade size), a few whales (typical sizes a hundred times larger) and
one-off wallets making a single ordinary trade. On top of that the world injects anomalies of
three kinds, recorded as ground truth in :attr:`PolymarketWorld.anomalies`:

- ``size_spike``: a regular trader trades 40-120 times their usual size;
- ``fresh_wallet_bet``: a wallet with no history bets $8k-$40k;
- ``price_dislocation``: a trade 0.2-0.35 away from the market's price at that moment.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_right
from functools import cached_property
from typing import Literal

import msgspec

from processors.models import PolymarketMarket, PolymarketTrade

__all__ = ["AnomalyKind", "PolymarketConfig", "PolymarketWorld"]

AnomalyKind = Literal["size_spike", "fresh_wallet_bet", "price_dislocation"]
HOUR = 3600


class PolymarketConfig(msgspec.Struct, frozen=True, kw_only=True):
    seed: int = 7
    now: int = 1_793_491_200
    window_hours: int = 24
    n_markets: int = 30
    n_traders: int = 300
    n_whales: int = 8
    n_one_off: int = 60
    anomalies_per_kind: int = 15


def _hex(n: int, *parts: object) -> str:
    return "0x" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:n]


class _Trader(msgspec.Struct, kw_only=True):
    wallet: str
    median: float  # typical notional in USDC
    markets: list[int]
    n: int


class PolymarketWorld:
    """The deterministic Polymarket behind the simulator provider."""

    def __init__(self, config: PolymarketConfig | None = None) -> None:
        self.config = config or PolymarketConfig()
        self._start = self.config.now - self.config.window_hours * HOUR

    @cached_property
    def _paths(self) -> list[list[float]]:
        cfg = self.config
        out = []
        for m in range(cfg.n_markets):
            rng = random.Random(f"{cfg.seed}:pm:path:{m}")
            logit = math.log((p := rng.uniform(0.15, 0.85)) / (1 - p))
            path = []
            for _ in range(cfg.window_hours + 2):
                path.append(1 / (1 + math.exp(-logit)))
                logit += rng.gauss(0.0, 0.02)
            out.append(path)
        return out

    def probability(self, market: int, t: int) -> float:
        """The market's "Yes" probability at time ``t`` (interpolated hourly path)."""
        path = self._paths[market]
        hour, into = divmod(max(0, t - self._start), HOUR)
        hour = min(hour, len(path) - 2)
        return path[hour] + (path[hour + 1] - path[hour]) * min(1.0, into / HOUR)

    @cached_property
    def _condition_ids(self) -> list[str]:
        return [_hex(64, self.config.seed, "market", m) for m in range(self.config.n_markets)]

    @cached_property
    def _generated(self) -> tuple[list[PolymarketTrade], dict[str, AnomalyKind], set[str]]:
        cfg = self.config
        rng = random.Random(f"{cfg.seed}:pm:trades")
        trades: list[PolymarketTrade] = []
        whales: set[str] = set()
        traders = [
            _Trader(
                wallet=_hex(40, cfg.seed, "trader", i),
                median=10 ** rng.uniform(1.0, 2.5),
                markets=rng.sample(range(cfg.n_markets), k=rng.randint(1, 4)),
                n=rng.randint(4, 20),
            )
            for i in range(cfg.n_traders)
        ]
        for i in range(cfg.n_whales):
            w = _Trader(
                wallet=_hex(40, cfg.seed, "whale", i),
                median=10 ** rng.uniform(3.7, 4.5),
                markets=rng.sample(range(cfg.n_markets), k=rng.randint(3, 8)),
                n=rng.randint(15, 40),
            )
            whales.add(w.wallet)
            traders.append(w)
        traders.extend(
            _Trader(
                wallet=_hex(40, cfg.seed, "oneoff", i),
                median=10 ** rng.uniform(1.0, 2.3),
                markets=[rng.randrange(cfg.n_markets)],
                n=1,
            )
            for i in range(cfg.n_one_off)
        )
        for tr in traders:
            for _ in range(tr.n):
                notional = tr.median * math.exp(rng.gauss(0.0, 0.45))
                trades.append(self._trade(rng, tr.wallet, rng.choice(tr.markets), notional, 0.0))

        anomalies: dict[str, AnomalyKind] = {}
        regulars = [t for t in traders[: cfg.n_traders] if t.n >= 6]
        for tr in rng.sample(regulars, k=cfg.anomalies_per_kind):
            notional = tr.median * rng.uniform(40.0, 120.0)
            spike = self._trade(rng, tr.wallet, rng.choice(tr.markets), notional, 0.0)
            anomalies[spike.trade_id] = "size_spike"
            trades.append(spike)
        for i in range(cfg.anomalies_per_kind):
            wallet = _hex(40, cfg.seed, "fresh", i)
            bet = self._trade(
                rng, wallet, rng.randrange(cfg.n_markets), rng.uniform(8_000, 40_000), 0.0
            )
            anomalies[bet.trade_id] = "fresh_wallet_bet"
            trades.append(bet)
        for tr in rng.sample(regulars, k=cfg.anomalies_per_kind):
            notional = tr.median * math.exp(rng.gauss(0.0, 0.45))
            shift = rng.uniform(0.2, 0.35)
            odd = self._trade(rng, tr.wallet, rng.choice(tr.markets), notional, shift)
            anomalies[odd.trade_id] = "price_dislocation"
            trades.append(odd)
        trades.sort(key=lambda t: (t.timestamp, t.trade_id))
        return trades, anomalies, whales

    def _trade(
        self, rng: random.Random, wallet: str, market: int, notional: float, shift: float
    ) -> PolymarketTrade:
        t = rng.randrange(self._start, self.config.now)
        yes = rng.random() < 0.5
        fair = self.probability(market, t)
        fair = fair if yes else 1.0 - fair
        if shift:
            # Move away from the fair price, towards whichever side leaves room for the move.
            price = fair + shift if fair + shift <= 0.99 else fair - shift
        else:
            price = fair + rng.gauss(0.0, 0.01)
        price = round(min(0.99, max(0.01, price)), 3)
        return PolymarketTrade(
            trade_id=_hex(64, self.config.seed, "trade", wallet, t, rng.random()),
            wallet=wallet,
            condition_id=self._condition_ids[market],
            outcome="Yes" if yes else "No",
            side="BUY" if rng.random() < 0.6 else "SELL",
            size=round(notional / price, 2),
            price=price,
            timestamp=t,
            title=self._question(market),
        )

    def _question(self, market: int) -> str:
        return f"Will simulated event #{market} resolve Yes?"

    @property
    def trades(self) -> list[PolymarketTrade]:
        """Every trade in the window, oldest first."""
        return self._generated[0]

    @property
    def anomalies(self) -> dict[str, AnomalyKind]:
        """Ground truth: trade id -> kind of injected anomaly."""
        return self._generated[1]

    @property
    def whales(self) -> set[str]:
        """Ground truth: the whale wallets."""
        return self._generated[2]

    @cached_property
    def _timestamps(self) -> list[int]:
        return [t.timestamp for t in self.trades]

    def trades_between(self, since: int, until: int | None = None) -> list[PolymarketTrade]:
        lo = bisect_right(self._timestamps, since - 1)
        hi = len(self.trades) if until is None else bisect_right(self._timestamps, until - 1)
        return self.trades[lo:hi]

    @cached_property
    def markets(self) -> list[PolymarketMarket]:
        volume: dict[str, float] = {}
        for t in self.trades:
            volume[t.condition_id] = volume.get(t.condition_id, 0.0) + t.notional
        out = []
        for m, cid in enumerate(self._condition_ids):
            p = round(self.probability(m, self.config.now), 3)
            out.append(
                PolymarketMarket(
                    condition_id=cid,
                    question=self._question(m),
                    slug=f"simulated-event-{m}",
                    outcome_prices=[p, round(1 - p, 3)],
                    volume_usd=round(volume.get(cid, 0.0), 2),
                    liquidity_usd=round(volume.get(cid, 0.0) / 4, 2),
                    end_date=self.config.now + 30 * 86_400,
                )
            )
        out.sort(key=lambda mk: -mk.volume_usd)
        return out
