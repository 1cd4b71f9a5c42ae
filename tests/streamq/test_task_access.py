"""``@app.task(..., public=, reserved_ids=)``: who may start a task over a generic API, and the
id space the application keeps for its jobs (what the server enforces; issue 11)."""

from __future__ import annotations

from typing import Any

import pytest

from streamq import App, ConfigurationError, Context


async def handler(ctx: Context, req: dict[str, Any]) -> None:
    return None


def test_tasks_are_private_unless_they_say_otherwise() -> None:
    app = App("access")
    app.task("internal")(handler)
    app.task("open", public=True)(handler)
    assert app.tasks["internal"].public is False
    assert app.tasks["open"].public is True


@pytest.mark.parametrize(
    ("space", "inside", "outside"),
    [
        ("bal:", ["bal:w:1", "bal:"], ["sync-w", "xbal:w"]),
        (("sync-", "pnl-"), ["sync-w-1", "pnl-w-s"], ["bal:w", "sync_w"]),
        (lambda job_id: job_id.endswith(":owned"), ["a:owned"], ["owned:a"]),
        (None, [], ["bal:w", "anything"]),
    ],
)
def test_reserved_ids_name_the_application_s_id_space(
    space: Any, inside: list[str], outside: list[str]
) -> None:
    app = App("access")
    app.task("t", reserved_ids=space)(handler)
    task = app.tasks["t"]
    assert [task.reserves(i) for i in inside] == [True] * len(inside)
    assert [task.reserves(i) for i in outside] == [False] * len(outside)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"public": "yes"}, "public must be True or False"),
        ({"public": 1}, "public must be True or False"),
        ({"reserved_ids": ""}, "reserved_ids must be"),
        ({"reserved_ids": ()}, "reserved_ids must be"),
        ({"reserved_ids": ("bal:", "")}, "reserved_ids must be"),
        ({"reserved_ids": 7}, "reserved_ids must be"),
    ],
)
def test_bad_access_options_are_configuration_errors(options: dict[str, Any], message: str) -> None:
    app = App("access")
    with pytest.raises(ConfigurationError, match=message):
        app.task("t", **options)(handler)
    assert "t" not in app.tasks
