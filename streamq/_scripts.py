"""Lua scripts: one file per script in ``streamq/lua``, registered once per client.

Each script file starts with its shebang line; the shared prelude (key layout, event emission,
fencing helpers) is inserted after it. redis-py's Script objects run EVALSHA and fall back to
SCRIPT LOAD when the server has not seen the script (after a restart, say).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

_NAMES = (
    "enqueue-3",
    "fetch-4",
    "settle-2",
    "reclaim-3",
    "renew-2",
    "progress-1",
    "cancel-3",
    "pause-2",
    "replay-2",
    "purge-2",
    "lock-2",
    "relock-1",
    "unlock-1",
    "admit-2",
    "refund-1",
    "flow-3",
    "childdone-2",
    "tick-2",
    "gate-1",
)


@cache
def source(name: str) -> str:
    """The full text of script ``name`` (e.g. ``"fetch-4"``), prelude included."""
    lua = resources.files("streamq") / "lua"
    body = (lua / f"{name}.lua").read_text()
    prelude = (lua / "_prelude.lua").read_text()
    shebang, _, rest = body.partition("\n")
    if not shebang.startswith("#!lua"):
        raise ValueError(f"script {name} must start with a #!lua line")
    return f"{shebang}\n{prelude}\n{rest}"


class Scripts:
    """The scripts registered on one client, called by verb: ``scripts.call("fetch", keys, args)``."""

    def __init__(self, client: Any) -> None:
        self._registered = {
            name.split("-")[0]: client.register_script(source(name)) for name in _NAMES
        }

    async def call(self, verb: str, keys: list[str], args: list[Any]) -> Any:
        return await self._registered[verb](keys=keys, args=args)
