"""The JSON the real services speak, both ways: decode their answers, encode ours alike.

Decoding is what the HTTP providers use. Encoding exists so stand-in servers (tests, local
demos) can answer with the services' own shapes from simulated data. Shapes:

- Helius enhanced transactions, ``GET /v0/addresses/{address}/transactions``: a swap is read
  from ``accountData`` — the wallet's ``nativeBalanceChange`` (lamports, fee included when it
  paid the fee) and its ``tokenBalanceChanges[].rawTokenAmount`` (exact integers). Wrapped-SOL
  changes count as SOL. Transactions that are not a single token against SOL are skipped.
- Helius balances, ``GET /v0/addresses/{address}/balances``: ``tokens[]`` + ``nativeBalance``.
- DexScreener, ``GET /latest/dex/tokens/{a,b,...}``: ``pairs[]``; per token the most liquid pair.
- Polymarket Gamma ``GET /markets`` (``outcomes``/``outcomePrices`` are JSON-encoded strings)
  and Data API ``GET /trades``.
- Discord webhooks: ``{"content", "embeds": [{"title", "description", "color", "fields"}]}``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec

from processors.models import (
    Alert,
    PolymarketMarket,
    PolymarketTrade,
    Side,
    Swap,
    TokenBalance,
    TokenInfo,
    WalletBalances,
)
from processors.solana import SOL_MINT, b58encode

__all__ = [
    "DexPair",
    "HeliusBalances",
    "HeliusTransaction",
    "alert_to_discord",
    "balances_from_helius",
    "balances_to_helius",
    "market_from_gamma",
    "market_to_gamma",
    "swap_to_helius",
    "swaps_from_helius",
    "tokens_from_dexscreener",
    "tokens_to_dexscreener",
    "trade_from_data_api",
    "trade_to_data_api",
]


class _Camel(msgspec.Struct, rename="camel", kw_only=True):
    pass


class RawTokenAmount(_Camel):
    token_amount: str
    decimals: int


class TokenBalanceChange(_Camel):
    user_account: str
    mint: str
    raw_token_amount: RawTokenAmount
    token_account: str = ""


class AccountData(_Camel):
    account: str
    native_balance_change: int = 0
    token_balance_changes: list[TokenBalanceChange] = msgspec.field(default_factory=list)


class HeliusTransaction(_Camel):
    signature: str
    timestamp: int
    fee: int = 0
    fee_payer: str = ""
    type: str = "UNKNOWN"
    source: str = ""
    account_data: list[AccountData] = msgspec.field(default_factory=list)


class HeliusToken(_Camel):
    mint: str
    amount: int
    decimals: int
    token_account: str = ""


class HeliusBalances(_Camel):
    tokens: list[HeliusToken] = msgspec.field(default_factory=list)
    native_balance: int = 0


class DexToken(_Camel):
    address: str
    name: str = ""
    symbol: str = ""


class DexLiquidity(_Camel):
    usd: float | None = None


class DexPair(_Camel):
    chain_id: str
    base_token: DexToken
    quote_token: DexToken | None = None
    price_native: str | None = None
    price_usd: str | None = None
    liquidity: DexLiquidity | None = None
    fdv: float | None = None
    market_cap: float | None = None
    pair_created_at: int | None = None  # milliseconds


class DexResponse(_Camel):
    pairs: list[DexPair] | None = None
    schema_version: str = "1.0.0"


class GammaMarket(_Camel):
    condition_id: str
    question: str
    slug: str = ""
    outcomes: str = '["Yes", "No"]'
    outcome_prices: str = "[]"
    volume_num: float = 0.0
    liquidity_num: float = 0.0
    end_date: str | None = None
    active: bool = True
    closed: bool = False


class DataApiTrade(_Camel):
    proxy_wallet: str
    side: str
    condition_id: str
    size: float
    price: float
    timestamp: int
    outcome: str = ""
    title: str = ""
    transaction_hash: str = ""
    asset: str = ""


def _account(*parts: str) -> str:
    return b58encode(hashlib.sha256(":".join(parts).encode()).digest())


def swap_to_helius(s: Swap) -> dict[str, Any]:
    """The enhanced transaction Helius would return for swap ``s`` (wallet pays the fee)."""
    sign = 1 if s.side == "buy" else -1
    pool = _account("pool", s.mint)
    return {
        "signature": s.signature,
        "timestamp": s.timestamp,
        "fee": s.fee_lamports,
        "feePayer": s.wallet,
        "type": "SWAP",
        "source": "RAYDIUM",
        "description": "",
        "tokenTransfers": [],
        "nativeTransfers": [],
        "accountData": [
            {
                "account": s.wallet,
                "nativeBalanceChange": -sign * s.sol_lamports - s.fee_lamports,
                "tokenBalanceChanges": [
                    {
                        "userAccount": s.wallet,
                        "tokenAccount": _account("ata", s.wallet, s.mint),
                        "mint": s.mint,
                        "rawTokenAmount": {
                            "tokenAmount": str(sign * s.token_amount),
                            "decimals": s.decimals,
                        },
                    }
                ],
            },
            {
                "account": pool,
                "nativeBalanceChange": sign * s.sol_lamports,
                "tokenBalanceChanges": [],
            },
        ],
    }


def swaps_from_helius(txs: list[HeliusTransaction], wallet: str) -> list[Swap]:
    """The token/SOL swaps of ``wallet`` among ``txs`` (others are skipped), in input order."""
    out: list[Swap] = []
    for tx in txs:
        native = 0
        tokens: dict[str, tuple[int, int]] = {}
        wsol = 0
        for acc in tx.account_data:
            if acc.account == wallet:
                native += acc.native_balance_change
            for ch in acc.token_balance_changes:
                if ch.user_account != wallet:
                    continue
                delta = int(ch.raw_token_amount.token_amount)
                if ch.mint == SOL_MINT:
                    wsol += delta
                else:
                    prev = tokens.get(ch.mint, (0, ch.raw_token_amount.decimals))[0]
                    tokens[ch.mint] = (prev + delta, ch.raw_token_amount.decimals)
        fee = tx.fee if tx.fee_payer == wallet else 0
        sol_delta = native + fee + wsol  # what the swap moved, fee excluded
        if len(tokens) != 1:
            continue
        ((mint, (amount, decimals)),) = tokens.items()
        side: Side
        if amount > 0 and sol_delta < 0:
            side, sol = "buy", -sol_delta
        elif amount < 0 and sol_delta > 0:
            side, sol = "sell", sol_delta
        else:
            continue
        out.append(
            Swap(
                signature=tx.signature,
                wallet=wallet,
                mint=mint,
                side=side,
                token_amount=abs(amount),
                decimals=decimals,
                sol_lamports=sol,
                fee_lamports=fee,
                timestamp=tx.timestamp,
            )
        )
    return out


def balances_to_helius(b: WalletBalances) -> dict[str, Any]:
    return {
        "tokens": [
            {
                "mint": t.mint,
                "amount": t.amount,
                "decimals": t.decimals,
                "tokenAccount": _account("ata", b.wallet, t.mint),
            }
            for t in b.tokens
        ],
        "nativeBalance": b.lamports,
    }


def balances_from_helius(doc: HeliusBalances, wallet: str, *, now: int) -> WalletBalances:
    tokens = [
        TokenBalance(mint=t.mint, amount=t.amount, decimals=t.decimals)
        for t in doc.tokens
        if t.amount > 0
    ]
    return WalletBalances(wallet=wallet, lamports=doc.native_balance, tokens=tokens, fetched_at=now)


def _pair(i: TokenInfo) -> dict[str, Any]:
    return {
        "chainId": "solana",
        "dexId": "raydium",
        "pairAddress": _account("pool", i.mint),
        "baseToken": {"address": i.mint, "name": i.name, "symbol": i.symbol},
        "quoteToken": {"address": SOL_MINT, "name": "Wrapped SOL", "symbol": "SOL"},
        "priceNative": None if i.price_sol is None else repr(i.price_sol),
        "priceUsd": None if i.price_usd is None else repr(i.price_usd),
        "liquidity": {"usd": i.liquidity_usd},
        "marketCap": i.market_cap_usd,
        "pairCreatedAt": None if i.pair_created_at is None else i.pair_created_at * 1000,
    }


def tokens_to_dexscreener(infos: list[TokenInfo]) -> dict[str, Any]:
    # DexScreener answers {"pairs": null} when it knows none of the tokens.
    return {"schemaVersion": "1.0.0", "pairs": [_pair(i) for i in infos] or None}


def tokens_from_dexscreener(doc: DexResponse, *, now: int) -> dict[str, TokenInfo]:
    """Per base token, the Solana pair with the most liquidity."""
    best: dict[str, DexPair] = {}
    for p in doc.pairs or []:
        if p.chain_id != "solana":
            continue
        liq = p.liquidity.usd if p.liquidity and p.liquidity.usd is not None else -1.0
        cur = best.get(p.base_token.address)
        cur_liq = (cur.liquidity.usd or -1.0) if cur and cur.liquidity else -1.0
        if cur is None or liq > cur_liq:
            best[p.base_token.address] = p
    out = {}
    for mint, p in best.items():
        quoted_in_sol = p.quote_token is None or p.quote_token.address == SOL_MINT
        out[mint] = TokenInfo(
            mint=mint,
            symbol=p.base_token.symbol,
            name=p.base_token.name,
            price_usd=float(p.price_usd) if p.price_usd else None,
            price_sol=float(p.price_native) if p.price_native and quoted_in_sol else None,
            liquidity_usd=p.liquidity.usd if p.liquidity else None,
            market_cap_usd=p.market_cap if p.market_cap is not None else p.fdv,
            pair_created_at=p.pair_created_at // 1000 if p.pair_created_at else None,
            fetched_at=now,
        )
    return out


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def market_to_gamma(m: PolymarketMarket) -> dict[str, Any]:
    enc = msgspec.json.encode
    return {
        "conditionId": m.condition_id,
        "question": m.question,
        "slug": m.slug,
        "outcomes": enc(m.outcomes).decode(),
        "outcomePrices": enc([str(p) for p in m.outcome_prices]).decode(),
        "volume": str(m.volume_usd),
        "volumeNum": m.volume_usd,
        "liquidity": str(m.liquidity_usd),
        "liquidityNum": m.liquidity_usd,
        "endDate": None if m.end_date is None else _iso(m.end_date),
        "active": m.active,
        "closed": not m.active,
    }


def market_from_gamma(g: GammaMarket) -> PolymarketMarket:
    end = None
    if g.end_date:
        end = int(datetime.fromisoformat(g.end_date.replace("Z", "+00:00")).timestamp())
    return PolymarketMarket(
        condition_id=g.condition_id,
        question=g.question,
        slug=g.slug,
        outcomes=msgspec.json.decode(g.outcomes, type=list[str]),
        outcome_prices=[float(p) for p in msgspec.json.decode(g.outcome_prices, type=list[str])],
        volume_usd=g.volume_num,
        liquidity_usd=g.liquidity_num,
        end_date=end,
        active=g.active and not g.closed,
    )


def trade_to_data_api(t: PolymarketTrade) -> dict[str, Any]:
    return {
        "proxyWallet": t.wallet,
        "side": t.side,
        "asset": "",
        "conditionId": t.condition_id,
        "size": t.size,
        "price": t.price,
        "timestamp": t.timestamp,
        "title": t.title,
        "outcome": t.outcome,
        "transactionHash": t.trade_id,
    }


def trade_from_data_api(d: DataApiTrade) -> PolymarketTrade:
    return PolymarketTrade(
        trade_id=d.transaction_hash or f"{d.proxy_wallet}:{d.timestamp}:{d.condition_id}",
        wallet=d.proxy_wallet,
        condition_id=d.condition_id,
        outcome=d.outcome,
        side="BUY" if d.side.upper() == "BUY" else "SELL",
        size=d.size,
        price=d.price,
        timestamp=d.timestamp,
        title=d.title,
    )


_COLOURS = {"info": 0x3498DB, "warning": 0xF1C40F, "critical": 0xE74C3C}


def alert_to_discord(a: Alert) -> dict[str, Any]:
    # Discord caps: title 256, description 4096, 25 fields, field values 1024 characters.
    return {
        "content": f"[{a.severity.upper()}] {a.title}"[:2000],
        "embeds": [
            {
                "title": a.title[:256],
                "description": a.description[:4096],
                "color": _COLOURS[a.severity],
                "fields": [
                    {"name": k[:256], "value": v[:1024], "inline": True}
                    for k, v in list(a.fields.items())[:25]
                ],
                "footer": {"text": f"{a.kind} {a.id}"[:2048]},
                "timestamp": _iso(a.created_at),
            }
        ],
    }
