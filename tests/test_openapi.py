"""The served OpenAPI document matches the routes the app really has."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.routing import Route
from starlette.testclient import TestClient

from authserver.config import Settings
from tests.support.helpers import app_of


def test_openapi_lists_exactly_the_api_routes(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    documented = {
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    }
    served = {
        (route.path, method)
        for route in app_of(client).routes
        if isinstance(route, Route)
        and route.path.startswith("/api/")
        and route.path != "/api/v1/openapi.json"
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert documented == served


def test_openapi_references_resolve(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    schemas = document["components"]["schemas"]

    def refs(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        assert ref.split("/")[-1] in schemas


def test_openapi_server_is_the_issuer(client: TestClient, settings: Settings) -> None:
    assert client.get("/api/v1/openapi.json").json()["servers"] == [{"url": settings.issuer}]
