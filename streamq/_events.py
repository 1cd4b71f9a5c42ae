"""Events: entries of a queue's events stream as typed ``Event`` values."""

from __future__ import annotations

from streamq._types import Event


def parse_event(queue: str, entry_id: bytes, fields: dict[bytes, bytes]) -> Event:
    def text(name: bytes) -> str | None:
        value = fields.get(name)
        return value.decode() if value is not None else None

    eid = entry_id.decode()
    progress = text(b"p")
    return Event(
        id=eid,
        queue=queue,
        type=text(b"t") or "",
        job=text(b"j") or "",
        name=text(b"n") or "",
        attempt=int(fields.get(b"a", b"0")),
        at=int(eid.partition("-")[0]) / 1000.0,
        progress=float(progress) if progress is not None else None,
        message=text(b"m") or text(b"r"),
        error=text(b"e"),
    )
