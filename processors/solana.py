"""Solana addresses: base58 with a 32-byte decoded length.

Base58 is implemented here (it is thirty lines) rather than pulled in as a dependency. The
simulator uses :func:`b58encode` to mint deterministic addresses and signatures.
"""

from __future__ import annotations

from collections.abc import Iterable

from processors.errors import InvalidWalletAddress

__all__ = [
    "ALPHABET",
    "SOL_MINT",
    "b58decode",
    "b58encode",
    "is_valid_address",
    "validate_address",
    "validate_addresses",
]

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}

# Wrapped SOL: the quote side of every simulated swap and the key for the SOL/USD price.
SOL_MINT = "So11111111111111111111111111111111111111112"


def b58encode(data: bytes) -> str:
    """Encode bytes as base58 (Bitcoin alphabet; leading zero bytes become '1')."""
    n = int.from_bytes(data, "big")
    out: list[str] = []
    while n:
        n, r = divmod(n, 58)
        out.append(ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Decode base58 text; raises ValueError on a character outside the alphabet."""
    n = 0
    for ch in text:
        try:
            n = n * 58 + _INDEX[ch]
        except KeyError:
            raise ValueError(f"invalid base58 character {ch!r}") from None
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


def is_valid_address(address: object) -> bool:
    """True if ``address`` is a string that decodes from base58 to exactly 32 bytes."""
    # 32 bytes encode to 32..44 characters; the cheap length check skips huge inputs.
    if not isinstance(address, str) or not 32 <= len(address) <= 44:
        return False
    try:
        return len(b58decode(address)) == 32
    except ValueError:
        return False


def validate_address(address: str) -> str:
    """Return ``address`` unchanged; raises InvalidWalletAddress if it is not valid."""
    if not is_valid_address(address):
        raise InvalidWalletAddress([address])
    return address


def validate_addresses(addresses: Iterable[str]) -> list[str]:
    """Return the addresses as a list; raises InvalidWalletAddress naming every bad one."""
    items = list(addresses)
    bad = [a for a in items if not is_valid_address(a)]
    if bad:
        raise InvalidWalletAddress(bad)
    return items
