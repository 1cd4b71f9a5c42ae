"""Similarity between wallets from what they trade and how they spread their capital.

Two vectors per wallet over the tokens it traded: *capital* (SOL spent buying each token) and
*binary* (1 for each token traded). For every pair: cosine of the capital vectors, cosine and
Jaccard index of the binary vectors, and the tokens they share. ``vector_type`` picks which
cosine is the pair's ``score`` (the plans' default is capital). Current holdings, when given,
add a cosine over the tokens held now (raw amounts valued at the prices given, else skipped).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Literal

import msgspec

from processors.errors import InsufficientData
from processors.models import Swap, WalletBalances

__all__ = [
    "PairSimilarity",
    "SimilarityResult",
    "VectorType",
    "analyze_similarity",
    "capital_vector",
    "cosine",
    "jaccard",
]

VectorType = Literal["capital", "binary"]


class PairSimilarity(msgspec.Struct, frozen=True, kw_only=True):
    wallet_a: str
    wallet_b: str
    score: float
    capital_cosine: float
    binary_cosine: float
    jaccard: float
    holdings_cosine: float | None
    shared_tokens: list[str]


class SimilarityResult(msgspec.Struct, frozen=True, kw_only=True):
    wallets: list[str]  # the wallets compared (with at least one swap)
    skipped: list[str]  # wallets given without any swap
    vector_type: VectorType
    pairs: list[PairSimilarity]  # highest score first
    shared_token_counts: dict[str, int]  # mint -> number of wallets trading it (>= 2 only)
    average_score: float


def capital_vector(swaps: Iterable[Swap]) -> dict[str, float]:
    """Lamports spent buying each token."""
    out: dict[str, float] = defaultdict(float)
    for s in swaps:
        if s.side == "buy":
            out[s.mint] += s.sol_lamports
        else:
            out.setdefault(s.mint, 0.0)
    return dict(out)


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Cosine of two sparse vectors (0 when either is all zeros)."""
    if len(a) > len(b):
        a, b = b, a
    dot = sum(v * b.get(k, 0.0) for k, v in a.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if na and nb else 0.0


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    sa, sb = set(a), set(b)
    union = sa | sb
    return len(sa & sb) / len(union) if union else 0.0


def analyze_similarity(
    swaps_by_wallet: Mapping[str, Iterable[Swap]],
    *,
    vector_type: VectorType = "capital",
    balances: Mapping[str, WalletBalances] | None = None,
    prices: Mapping[str, float | None] | None = None,
) -> SimilarityResult:
    """Pairwise similarity; raises InsufficientData with fewer than two wallets with swaps."""
    vectors = {w: capital_vector(s) for w, s in swaps_by_wallet.items()}
    wallets = sorted(w for w, v in vectors.items() if v)
    skipped = sorted(w for w, v in vectors.items() if not v)
    if len(wallets) < 2:
        raise InsufficientData(
            f"similarity needs at least 2 wallets with swaps, got {len(wallets)}"
            + (f" (no swaps: {', '.join(skipped)})" if skipped else "")
        )
    holdings = {w: _holdings(b, prices or {}) for w, b in (balances or {}).items()}
    pairs: list[PairSimilarity] = []
    for a, b in combinations(wallets, 2):
        va, vb = vectors[a], vectors[b]
        binary_cos = len(va.keys() & vb.keys()) / math.sqrt(len(va) * len(vb))
        capital_cos = cosine(va, vb)
        ha, hb = holdings.get(a), holdings.get(b)
        pairs.append(
            PairSimilarity(
                wallet_a=a,
                wallet_b=b,
                score=capital_cos if vector_type == "capital" else binary_cos,
                capital_cosine=capital_cos,
                binary_cosine=binary_cos,
                jaccard=jaccard(va, vb),
                holdings_cosine=cosine(ha, hb) if ha is not None and hb is not None else None,
                shared_tokens=sorted(va.keys() & vb.keys()),
            )
        )
    pairs.sort(key=lambda p: (-p.score, p.wallet_a, p.wallet_b))
    counts = Counter(m for w in wallets for m in vectors[w])
    return SimilarityResult(
        wallets=wallets,
        skipped=skipped,
        vector_type=vector_type,
        pairs=pairs,
        shared_token_counts={m: n for m, n in sorted(counts.items()) if n >= 2},
        average_score=sum(p.score for p in pairs) / len(pairs),
    )


def _holdings(b: WalletBalances, prices: Mapping[str, float | None]) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in b.tokens:
        price = prices.get(t.mint)
        if price is not None and t.amount:
            out[t.mint] = t.amount / 10**t.decimals * price
    return out
