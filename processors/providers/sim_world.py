"""The simulated Solana world: tokens with price paths and wallets with known trading styles.

Everything is a pure function of ``(seed, now)``: the same seed gives the same tokens, wallets,
swaps and prices on every machine (``random.Random`` seeded with strings is stable across runs).
The world also records the *ground truth* of each wallet — its style, its leader when it copies
another wallet, its completed holding periods and its PnL per token — computed while the trades
are generated, by a ledger of its own rather than by ``processors.analysis``.

Styles: ``holder`` (few tokens, held for weeks), ``flipper`` (in and out within hours),
``sniper`` (buys seconds after a token launches, out within minutes), ``hf_bot`` (hundreds of
trades a day on a handful of tokens) and ``copy_trader`` (mirrors a leader's trades seconds
later). Any valid address that is not one of the generated wallets gets its own history, with a
style and trades seeded by the address.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from fractions import Fraction
from functools import cached_property
from typing import Literal

import msgspec

from processors.models import LAMPORTS_PER_SOL, Side, Swap, TokenBalance, WalletBalances
from processors.solana import b58encode

__all__ = ["SimToken", "SimWorld", "Style", "TokenTruth", "WalletTruth", "WorldConfig"]

Style = Literal["holder", "flipper", "sniper", "hf_bot", "copy_trader"]
_OWN_STYLES: tuple[Style, ...] = ("holder", "flipper", "sniper", "hf_bot")
DAY = 86_400


class WorldConfig(msgspec.Struct, frozen=True, kw_only=True):
    seed: int = 7
    now: int = 1_793_491_200  # 2026-11-01T00:00:00Z: a fixed clock keeps the world reproducible
    history_days: int = 60
    n_tokens: int = 160
    holders: int = 5
    flippers: int = 6
    snipers: int = 4
    hf_bots: int = 3
    copy_traders: int = 4
    sol_usd: float = 150.0


class SimToken(msgspec.Struct, frozen=True, kw_only=True):
    mint: str
    symbol: str
    name: str
    decimals: int
    launch: int
    p0: float  # SOL per whole token at launch
    vol: float  # hourly log-price standard deviation


class TokenTruth(msgspec.Struct, frozen=True, kw_only=True):
    mint: str
    buys: int
    sells: int
    bought_lamports: int
    sold_lamports: int
    fees_lamports: int
    remaining: int
    realised_sol: float
    unrealised_sol: float
    net_sol: float


class WalletTruth(msgspec.Struct, frozen=True, kw_only=True):
    address: str
    style: Style
    leader: str | None
    swaps: list[Swap]  # oldest first
    tokens: dict[str, TokenTruth]
    hold_seconds: list[int]  # completed holding periods (position opened -> back to zero)
    realised_sol: float
    unrealised_sol: float
    fees_sol: float
    net_sol: float


class _Event(msgspec.Struct, kw_only=True):
    t: int
    mint: str
    side: Side
    amount: int
    lamports: int


def _address(*parts: object) -> str:
    return b58encode(hashlib.sha256(":".join(map(str, parts)).encode()).digest())


class SimWorld:
    """The deterministic world behind the simulator providers."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        self._paths: dict[str, list[float]] = {}
        self._truths: dict[str, WalletTruth] = {}

    # -- tokens and prices -------------------------------------------------------------------

    @cached_property
    def tokens(self) -> dict[str, SimToken]:
        cfg = self.config
        rng = random.Random(f"{cfg.seed}:tokens")
        out: dict[str, SimToken] = {}
        for i in range(cfg.n_tokens):
            symbol = "".join(rng.choice("ABCDEFGHKLMNPRSTUWXYZ") for _ in range(rng.randint(3, 5)))
            launch = cfg.now - rng.randint(2 * DAY, (cfg.history_days + 30) * DAY)
            mint = _address(cfg.seed, "token", i)
            out[mint] = SimToken(
                mint=mint,
                symbol=symbol,
                name=f"{symbol.title()} Token",
                decimals=rng.choice((6, 6, 9)),
                launch=launch,
                p0=10 ** rng.uniform(-7.0, -3.0),
                vol=rng.uniform(0.01, 0.05),
            )
        return out

    def price_at(self, mint: str, t: int) -> float:
        """Price in SOL per whole token at time ``t`` (hourly steps of a random walk)."""
        token = self.tokens[mint]
        path = self._paths.get(mint)
        if path is None:
            rng = random.Random(f"{self.config.seed}:price:{mint}")
            hours = (self.config.now - token.launch) // 3600 + 2
            logp, path = math.log(token.p0), []
            for _ in range(hours):
                path.append(math.exp(logp))
                logp += rng.gauss(0.0, token.vol)
            self._paths[mint] = path
        # Geometric interpolation inside the hour: a sniper's exit minutes after its entry sees
        # the price move, as it would on a real pool.
        hour, into = divmod(max(0, t - token.launch), 3600)
        if hour >= len(path) - 1:
            return path[-1]
        return path[hour] * math.pow(path[hour + 1] / path[hour], into / 3600)

    def current_price(self, mint: str) -> float:
        return self.price_at(mint, self.config.now)

    # -- wallets -------------------------------------------------------------------------------

    @cached_property
    def wallets(self) -> dict[str, Style]:
        """The generated population: address -> style (copy-traders' leaders in ``leaders``)."""
        cfg = self.config
        out: dict[str, Style] = {}
        counts: list[tuple[Style, int]] = [
            ("holder", cfg.holders),
            ("flipper", cfg.flippers),
            ("sniper", cfg.snipers),
            ("hf_bot", cfg.hf_bots),
            ("copy_trader", cfg.copy_traders),
        ]
        for style, n in counts:
            for i in range(n):
                out[_address(cfg.seed, "wallet", style, i)] = style
        return out

    @cached_property
    def leaders(self) -> dict[str, str]:
        """copy-trader -> the wallet it mirrors; each leader has one copier."""
        candidates = [a for a, s in self.wallets.items() if s in ("flipper", "sniper", "holder")]
        rng = random.Random(f"{self.config.seed}:leaders")
        copiers = [a for a, s in self.wallets.items() if s == "copy_trader"]
        chosen = rng.sample(candidates, k=min(len(copiers), len(candidates)))
        return dict(zip(copiers, chosen, strict=False))

    def style_of(self, address: str) -> Style:
        known = self.wallets.get(address)
        if known is not None and (known != "copy_trader" or address in self.leaders):
            return known
        digest = hashlib.sha256(f"{self.config.seed}:style:{address}".encode()).digest()
        return _OWN_STYLES[digest[0] % len(_OWN_STYLES)]

    def truth(self, address: str) -> WalletTruth:
        """The wallet's trades and their ground truth (generated on first use, then cached)."""
        cached = self._truths.get(address)
        if cached is None:
            cached = self._truths[address] = self._build(address)
        return cached

    def swaps(self, address: str) -> list[Swap]:
        return self.truth(address).swaps

    def balances(self, address: str) -> WalletBalances:
        truth = self.truth(address)
        rng = random.Random(f"{self.config.seed}:sol:{address}")
        tokens = [
            TokenBalance(mint=m, amount=t.remaining, decimals=self.tokens[m].decimals)
            for m, t in sorted(truth.tokens.items())
            if t.remaining > 0
        ]
        lamports = rng.randint(LAMPORTS_PER_SOL // 10, 50 * LAMPORTS_PER_SOL)
        return WalletBalances(
            wallet=address, lamports=lamports, tokens=tokens, fetched_at=self.config.now
        )

    # -- generation ----------------------------------------------------------------------------

    def _build(self, address: str) -> WalletTruth:
        style = self.style_of(address)
        rng = random.Random(f"{self.config.seed}:wallet:{address}")
        leader = self.leaders.get(address) if style == "copy_trader" else None
        if style == "holder":
            events = list(self._holder(rng))
        elif style == "flipper":
            events = list(self._flipper(rng))
        elif style == "sniper":
            events = list(self._sniper(rng))
        elif style == "hf_bot":
            events = list(self._hf_bot(rng))
        else:
            assert leader is not None
            events = list(self._copier(rng, self.truth(leader)))
        return self._ledger(address, style, leader, events, rng)

    def _window_start(self) -> int:
        return self.config.now - self.config.history_days * DAY

    def _pick_tokens(self, rng: random.Random, n: int, *, launched_before: int) -> list[SimToken]:
        pool = [t for t in self.tokens.values() if t.launch < launched_before]
        return rng.sample(pool, k=min(n, len(pool)))

    def _buy(self, rng: random.Random, token: SimToken, t: int, sol: float) -> _Event:
        lamports = max(1_000_000, int(sol * LAMPORTS_PER_SOL))
        price = self.price_at(token.mint, t)
        amount = max(1, int(lamports / LAMPORTS_PER_SOL / price * 10**token.decimals))
        return _Event(t=t, mint=token.mint, side="buy", amount=amount, lamports=lamports)

    def _sell(self, rng: random.Random, token: SimToken, t: int, amount: int) -> _Event:
        price = self.price_at(token.mint, t) * (1.0 - rng.uniform(0.0, 0.02))  # slippage
        lamports = int(amount / 10**token.decimals * price * LAMPORTS_PER_SOL)
        return _Event(t=t, mint=token.mint, side="sell", amount=amount, lamports=lamports)

    def _holder(self, rng: random.Random) -> Iterator[_Event]:
        now = self.config.now
        for token in self._pick_tokens(rng, rng.randint(3, 7), launched_before=now - 12 * DAY):
            t = rng.randint(max(token.launch + 3600, self._window_start()), now - 10 * DAY)
            held = 0
            for _ in range(rng.randint(1, 3)):
                if t >= now:
                    break
                ev = self._buy(rng, token, t, rng.uniform(0.5, 8.0))
                held += ev.amount
                yield ev
                t += rng.randint(DAY, 5 * DAY)
            t += rng.randint(5 * DAY, 20 * DAY)
            if rng.random() < 0.35 and t < now:
                part = held * rng.randint(25, 60) // 100
                held -= part
                yield self._sell(rng, token, t, part)
                t += rng.randint(10 * DAY, 30 * DAY)
            if rng.random() < 0.2 and t < now:
                yield self._sell(rng, token, t, held)

    def _flipper(self, rng: random.Random) -> Iterator[_Event]:
        now = self.config.now
        for token in self._pick_tokens(rng, rng.randint(10, 18), launched_before=now - 3 * DAY):
            t = rng.randint(max(token.launch + 3600, self._window_start()), now - 2 * DAY)
            for _cycle in range(1 if rng.random() < 0.7 else 2):
                held = 0
                for _ in range(rng.randint(1, 2)):
                    ev = self._buy(rng, token, t, rng.uniform(0.2, 3.0))
                    held += ev.amount
                    yield ev
                    t += rng.randint(120, 1200)
                t += rng.randint(600, 10 * 3600)
                if rng.random() < 0.4:
                    part = held // 2
                    held -= part
                    yield self._sell(rng, token, t, part)
                    t += rng.randint(300, 3600)
                yield self._sell(rng, token, t, held)
                t += rng.randint(DAY // 2, 3 * DAY)
                if t >= now - DAY:
                    break

    def _sniper(self, rng: random.Random) -> Iterator[_Event]:
        now = self.config.now
        pool = [t for t in self.tokens.values() if self._window_start() < t.launch < now - DAY]
        for token in rng.sample(pool, k=min(rng.randint(8, 14), len(pool))):
            t = token.launch + rng.randint(2, 90)
            ev = self._buy(rng, token, t, rng.uniform(0.5, 5.0))
            yield ev
            held = ev.amount
            t += rng.randint(60, 1800)
            if rng.random() < 0.5:
                part = held * rng.randint(30, 70) // 100
                held -= part
                yield self._sell(rng, token, t, part)
                t += rng.randint(30, 600)
            yield self._sell(rng, token, t, held)

    def _hf_bot(self, rng: random.Random) -> Iterator[_Event]:
        now = self.config.now
        tokens = self._pick_tokens(rng, rng.randint(3, 5), launched_before=now - 10 * DAY)
        held = {tok.mint: 0 for tok in tokens}
        t = now - rng.randint(3 * DAY, 6 * DAY)
        for _ in range(rng.randint(250, 420)):
            token = rng.choice(tokens)
            if held[token.mint] == 0:
                ev = self._buy(rng, token, t, rng.uniform(0.05, 1.0))
                held[token.mint] = ev.amount
            else:
                ev = self._sell(rng, token, t, held[token.mint])
                held[token.mint] = 0
            yield ev
            t += rng.randint(5, 120)

    def _copier(self, rng: random.Random, leader: WalletTruth) -> Iterator[_Event]:
        scale = rng.uniform(0.3, 2.5)
        leader_held: dict[str, int] = {}
        held: dict[str, int] = {}
        last_t: dict[str, int] = {}
        copied = {m for m in leader.tokens if rng.random() < 0.9}
        for sw in leader.swaps:
            before = leader_held.get(sw.mint, 0)
            leader_held[sw.mint] = before + (
                sw.token_amount if sw.side == "buy" else -sw.token_amount
            )
            if sw.mint not in copied:
                continue
            token = self.tokens[sw.mint]
            t = max(sw.timestamp + rng.randint(3, 45), last_t.get(sw.mint, 0) + 1)
            if t >= self.config.now:
                continue
            if sw.side == "buy":
                sol = sw.sol_lamports / LAMPORTS_PER_SOL * scale * rng.uniform(0.9, 1.1)
                ev = self._buy(rng, token, t, sol)
                held[sw.mint] = held.get(sw.mint, 0) + ev.amount
            else:
                mine = held.get(sw.mint, 0)
                if mine == 0:
                    continue
                part = mine if leader_held[sw.mint] <= 0 else mine * sw.token_amount // before
                if part == 0:
                    continue
                ev = self._sell(rng, token, t, part)
                held[sw.mint] = mine - part
            last_t[sw.mint] = t
            yield ev

    def _ledger(
        self,
        address: str,
        style: Style,
        leader: str | None,
        events: list[_Event],
        rng: random.Random,
    ) -> WalletTruth:
        """Turn events into swaps and account for them (average cost, in exact fractions)."""
        events.sort(key=lambda e: (e.t, e.mint))
        swaps: list[Swap] = []
        state: dict[str, dict[str, Fraction | int]] = {}
        opened: dict[str, int] = {}
        holds: list[int] = []
        for i, ev in enumerate(events):
            fee = 5_000 + rng.randint(0, 200) * 500
            swaps.append(
                Swap(
                    signature=b58encode(hashlib.sha512(f"{address}:{i}".encode()).digest()),
                    wallet=address,
                    mint=ev.mint,
                    side=ev.side,
                    token_amount=ev.amount,
                    decimals=self.tokens[ev.mint].decimals,
                    sol_lamports=ev.lamports,
                    fee_lamports=fee,
                    timestamp=ev.t,
                )
            )
            s = state.setdefault(
                ev.mint,
                {
                    "qty": 0,
                    "cost": Fraction(0),
                    "realised": Fraction(0),
                    "fees": 0,
                    "buys": 0,
                    "sells": 0,
                    "in": 0,
                    "out": 0,
                },
            )
            s["fees"] = int(s["fees"]) + fee
            if ev.side == "buy":
                if s["qty"] == 0:
                    opened[ev.mint] = ev.t
                s["qty"] = int(s["qty"]) + ev.amount
                s["cost"] = Fraction(s["cost"]) + ev.lamports
                s["buys"] = int(s["buys"]) + 1
                s["in"] = int(s["in"]) + ev.lamports
            else:
                qty = int(s["qty"])
                basis = Fraction(s["cost"]) * ev.amount / qty
                s["realised"] = Fraction(s["realised"]) + ev.lamports - basis
                s["cost"] = Fraction(s["cost"]) - basis
                s["qty"] = qty - ev.amount
                s["sells"] = int(s["sells"]) + 1
                s["out"] = int(s["out"]) + ev.lamports
                if s["qty"] == 0:
                    holds.append(ev.t - opened.pop(ev.mint))
        tokens: dict[str, TokenTruth] = {}
        tot_real = tot_unreal = Fraction(0)
        tot_fees = 0
        for mint, s in state.items():
            qty = int(s["qty"])
            price = Fraction(self.current_price(mint))
            value = price * qty / 10 ** self.tokens[mint].decimals * LAMPORTS_PER_SOL
            unreal = (value - Fraction(s["cost"])) if qty else Fraction(0)
            real = Fraction(s["realised"])
            fees = int(s["fees"])
            tot_real += real
            tot_unreal += unreal
            tot_fees += fees
            tokens[mint] = TokenTruth(
                mint=mint,
                buys=int(s["buys"]),
                sells=int(s["sells"]),
                bought_lamports=int(s["in"]),
                sold_lamports=int(s["out"]),
                fees_lamports=fees,
                remaining=qty,
                realised_sol=float(real / LAMPORTS_PER_SOL),
                unrealised_sol=float(unreal / LAMPORTS_PER_SOL),
                net_sol=float((real + unreal - fees) / LAMPORTS_PER_SOL),
            )
        return WalletTruth(
            address=address,
            style=style,
            leader=leader,
            swaps=swaps,
            tokens=tokens,
            hold_seconds=holds,
            realised_sol=float(tot_real / LAMPORTS_PER_SOL),
            unrealised_sol=float(tot_unreal / LAMPORTS_PER_SOL),
            fees_sol=float(Fraction(tot_fees, LAMPORTS_PER_SOL)),
            net_sol=float((tot_real + tot_unreal - tot_fees) / LAMPORTS_PER_SOL),
        )
