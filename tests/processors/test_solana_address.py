from __future__ import annotations

import os

import pytest

from processors.errors import InvalidWalletAddress
from processors.solana import (
    SOL_MINT,
    b58decode,
    b58encode,
    is_valid_address,
    validate_address,
    validate_addresses,
)

# Real mainnet addresses: the plans' example wallet, wrapped SOL, the token program.
REAL = [
    "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
    SOL_MINT,
    "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
    "11111111111111111111111111111111",  # the system program: 32 zero bytes
]


@pytest.mark.parametrize("address", REAL)
def test_real_addresses_are_valid(address: str) -> None:
    assert is_valid_address(address)
    assert len(b58decode(address)) == 32
    assert b58encode(b58decode(address)) == address


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-an-address",
        "0OIl" + "1" * 40,  # characters outside the base58 alphabet
        b58encode(b"\xff" * 31),  # well-formed base58, but a 31-byte key
        b58encode(b"\x01" * 33),  # ... and a 33-byte one
        "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWMM",  # 45 characters
        "1" * 33,  # 33 zero bytes
    ],
)
def test_invalid_addresses_are_rejected(bad: str) -> None:
    assert not is_valid_address(bad)
    with pytest.raises(InvalidWalletAddress):
        validate_address(bad)


def test_non_string_is_invalid() -> None:
    assert not is_valid_address(None)
    assert not is_valid_address(b"9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")


def test_base58_roundtrip_of_random_keys() -> None:
    for _ in range(200):
        key = os.urandom(32)
        text = b58encode(key)
        assert b58decode(text) == key
        assert is_valid_address(text)


def test_error_names_every_bad_address_and_only_those() -> None:
    good = REAL[0]
    with pytest.raises(InvalidWalletAddress) as info:
        validate_addresses([good, "abc", REAL[1], "0xdeadbeef"])
    assert info.value.addresses == ["abc", "0xdeadbeef"]
    message = str(info.value)
    assert message.startswith("INVALID_WALLET_ADDRESS")
    assert "'abc'" in message and "'0xdeadbeef'" in message
    assert good not in message
    assert isinstance(info.value, ValueError)
    assert validate_addresses(REAL) == REAL
