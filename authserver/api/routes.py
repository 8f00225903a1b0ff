"""Routes of the management API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.api import federation_trusts as trusts
from authserver.api import personal_clients as pc
from authserver.api import users
from authserver.api.openapi import openapi_document
from authserver.web.context import services_of


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(services_of(request).settings))


ROUTES = [
    Route("/api/v1/iam/personal_clients", pc.create, methods=["POST"]),
    Route("/api/v1/iam/personal_clients", pc.list_own, methods=["GET"]),
    Route("/api/v1/iam/personal_clients/{id}", pc.get, methods=["GET"]),
    Route("/api/v1/iam/personal_clients/{id}", pc.update, methods=["POST"]),
    Route("/api/v1/iam/personal_clients/{id}", pc.delete, methods=["DELETE"]),
    Route("/api/v1/iam/personal_clients/{id}/rotate", pc.rotate, methods=["POST"]),
    Route("/api/v1/iam/personal_clients/{id}/usage", pc.usage, methods=["GET"]),
    Route("/api/v1/search/iam/personal_clients", pc.search, methods=["POST"]),
    Route("/api/v1/iam/federation_trusts", trusts.create, methods=["POST"]),
    Route("/api/v1/iam/federation_trusts", trusts.list_own, methods=["GET"]),
    Route("/api/v1/iam/federation_trusts/{id}", trusts.get, methods=["GET"]),
    Route("/api/v1/iam/federation_trusts/{id}", trusts.update, methods=["POST"]),
    Route("/api/v1/iam/federation_trusts/{id}", trusts.delete, methods=["DELETE"]),
    Route("/api/v1/auth/introspect", pc.introspect, methods=["GET"]),
    Route("/api/v1/users", users.list_users, methods=["GET"]),
    Route("/api/v1/users/{id}", users.get, methods=["GET"]),
    Route("/api/v1/search/users", users.search, methods=["POST"]),
    Route("/api/v1/openapi.json", openapi, methods=["GET"]),
]
