"""Applications add their own endpoints: Operations get auth, rate limits, metrics labels
and an OpenAPI entry; plain routes are mounted as given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest
from server_support import bearer, register_tasks, token_spec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from server import (
    ApiError,
    Call,
    OperationTable,
    ServerSettings,
    SettingsError,
    create_app,
    json_response,
    running_server,
)
from server.main import load_app


class Analysis(msgspec.Struct, frozen=True, kw_only=True):
    wallet: str
    queued_jobs: int


extra = OperationTable()


@extra(
    "GET",
    "/api/v1/analyses/{wallet}",
    summary="An analysis",
    responses={200: Analysis},
    errors=(404,),
    tags=("analyses",),
)
async def get_analysis(request: Request, call: Call) -> Response:
    """Reads something through the streamq App the server was built with."""
    wallet = request.path_params["wallet"]
    if wallet == "missing":
        raise ApiError(404, "analysis_not_found", "no such analysis")
    names = await call.app.queue_names()
    return json_response(Analysis(wallet=wallet, queued_jobs=len(names)))


async def plain(request: Request) -> Response:
    return PlainTextResponse("plain")


async def test_extra_operations_and_routes(
    app_factory: Callable[..., Any], uniq: Callable[[str], str]
) -> None:
    app = app_factory()
    register_tasks(app, uniq("q"), uniq("q"))
    settings = ServerSettings().with_tokens(token_spec("r:read,w:write"))
    asgi = create_app(
        settings,
        app,
        extra_operations=extra.operations,
        extra_routes=[Route("/plain", plain)],
    )
    async with running_server(asgi) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/api/v1/analyses/w1")).status_code == 401
        r = await client.get("/api/v1/analyses/w1", headers=bearer("w"))
        assert r.status_code == 403
        r = await client.get("/api/v1/analyses/w1", headers=bearer("r"))
        assert r.status_code == 200 and r.json()["wallet"] == "w1"
        r = await client.get("/api/v1/analyses/missing", headers=bearer("r"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "analysis_not_found"
        assert (await client.get("/plain")).text == "plain"
        doc = (await client.get("/openapi.json")).json()
        op = doc["paths"]["/api/v1/analyses/{wallet}"]["get"]
        assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Analysis"
        }
        assert "Analysis" in doc["components"]["schemas"]
        metrics = (await client.get("/metrics", headers=bearer("r"))).text
        assert 'route="/api/v1/analyses/{wallet}"' in metrics
        assert 'route="/plain"' in metrics


def test_load_app_from_a_spec() -> None:
    import streamq

    assert isinstance(load_app("streamq.demo:app"), streamq.App)
    assert isinstance(load_app("streamq.demo"), streamq.App)  # attribute defaults to app
    with pytest.raises(SettingsError, match="cannot import"):
        load_app("no_such_module_anywhere:app")
    with pytest.raises(SettingsError, match="no attribute"):
        load_app("streamq:no_such_attribute")
    with pytest.raises(SettingsError, match=r"not a streamq\.App"):
        load_app("streamq:LANES")
