"""Encoders and decoders, built once: msgpack inside Redis, JSON at the edges."""

from __future__ import annotations

from typing import Any

import msgspec

from streamq._types import JobSpec

msgpack_encoder = msgspec.msgpack.Encoder()
_spec_decoder = msgspec.msgpack.Decoder(JobSpec)
_any_decoder = msgspec.msgpack.Decoder()


def encode(value: Any) -> bytes:
    return msgpack_encoder.encode(value)


def decode_spec(data: bytes) -> JobSpec:
    return _spec_decoder.decode(data)


def decode_any(data: bytes | None) -> Any:
    if data is None or data == b"":
        return None
    return _any_decoder.decode(data)
