"""A flow as a tree for the job page: each job of the flow with its state, linked both ways.

streamq exposes a flow's counts (``App.flow_state``) but not its shape yet, so this reads the
children lists the broker keeps per parent (one pipeline per level, like ``flow_state``) and
the job records of the nodes, at most ``MAX_NODES`` of them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import streamq

# streamq has no public reader for a flow's children yet; these name its keys.
from streamq._flows import _split, flow_key

MAX_NODES = 200


@dataclass
class FlowNode:
    id: str
    queue: str
    name: str = "?"
    state: str = "expired"
    children: list[FlowNode] = field(default_factory=list)


async def flow_tree(app: streamq.App, queue: str, root: str) -> tuple[FlowNode, int]:
    """The tree under ``root`` and how many nodes were left out past ``MAX_NODES``."""
    top = FlowNode(id=root, queue=queue)
    nodes = [top]
    level = [top]
    left_out = 0
    while level:
        pipe = app.redis.pipeline(transaction=False)
        for node in level:
            pipe.lrange(flow_key(node.queue, node.id, "children"), 0, -1)
        lists = await pipe.execute()
        next_level: list[FlowNode] = []
        for node, members in zip(level, lists, strict=True):
            for member in members:
                if len(nodes) >= MAX_NODES:
                    left_out += 1
                    continue
                child_id, child_queue = _split(member)
                child = FlowNode(id=child_id, queue=child_queue)
                node.children.append(child)
                nodes.append(child)
                next_level.append(child)
        level = next_level
    records = await asyncio.gather(*(app.job(n.queue, n.id) for n in nodes))
    for node, record in zip(nodes, records, strict=True):
        if record is not None:
            node.name, node.state = record.name, record.state
    return top, left_out


async def find_parent(app: streamq.App, queue: str, parent: str, queues: list[str]) -> str | None:
    """The queue holding job ``parent`` (its own queue first), or None if none does."""
    for candidate in [queue, *(q for q in queues if q != queue)]:
        if await app.job(candidate, parent) is not None:
            return candidate
    return None
