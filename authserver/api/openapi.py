"""OpenAPI 3.1 description of the management API, served at ``/api/v1/openapi.json``.

Tests compare its paths and methods with the routes the app really serves.
"""

from __future__ import annotations

from typing import Any

from authserver.config import Settings


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "Invalid argument (code 3)"),
    "401": _json(_ref("Error"), "Missing or inactive bearer token (code 16)"),
    "403": _json(_ref("Error"), "Permission denied (code 7)"),
    "404": _json(_ref("Error"), "Not found, or not visible to the caller (code 5)"),
    "503": _json(_ref("Error"), "Database unavailable (code 14)"),
}

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

_PAGE = [
    {"name": "pageSize", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "pageToken", "in": "query", "schema": {"type": "string"}},
]

_PERSONAL_CLIENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "clientId": {"type": "string", "examples": ["swift-otter-12345@127.0.0.1/pcc"]},
        "userId": {"type": "string"},
        "displayName": {"type": "string", "maxLength": 200},
        "allowSourceCidr": {"type": "array", "items": {"type": "string"}, "maxItems": 32},
        "scopedRoles": {"type": "array", "items": {"type": "string"}},
        "expiresTime": {"type": "string", "format": "date-time"},
        "lastUsedAt": {"type": "string", "format": "date-time"},
        "createdAt": {"type": "string", "format": "date-time"},
        "updatedAt": {"type": "string", "format": "date-time"},
        "deletedAt": {"type": "string", "format": "date-time"},
        "requireDpop": {
            "type": "boolean",
            "description": "Present (true) only when tokens need a DPoP proof (RFC 9449)",
        },
    },
}

_TRUST = {
    "type": "object",
    "description": "A federation trust (RFC 8693 token exchange of a CI job's ID token)",
    "properties": {
        **_PERSONAL_CLIENT["properties"],  # type: ignore[dict-item]
        "clientId": {"type": "string", "examples": ["swift-otter-12345@127.0.0.1/wfe"]},
        "issuer": {"type": "string", "description": "https, or http on a loopback host"},
        "audience": {"type": "string", "description": "default: this server's issuer URL"},
        "condition": {"type": "string", "maxLength": 1024, "description": "CEL over claims"},
    },
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
    },
    "PersonalClient": _PERSONAL_CLIENT,
    "CreateRequest": {
        "type": "object",
        "description": "Unknown fields are ignored, as grpc-gateway does.",
        "properties": {
            "displayName": {"type": "string", "maxLength": 200},
            "allowSourceCidr": {"type": "array", "items": {"type": "string"}, "maxItems": 32},
            "scopedRoles": {"type": "array", "items": {"type": "string"}},
            "expires": {
                "type": "string",
                "pattern": "^[0-9]+(\\.[0-9]{1,9})?s$",
                "description": "protobuf Duration, e.g. 2592000s",
            },
            "requireDpop": {"type": "boolean", "description": "Tokens only with a DPoP proof"},
        },
    },
    "CreateResponse": {
        "type": "object",
        "properties": {"client": _ref("PersonalClient"), "clientSecret": {"type": "string"}},
    },
    "ClientResponse": {"type": "object", "properties": {"client": _ref("PersonalClient")}},
    "RotateRequest": {
        "type": "object",
        "description": "Both optional: the old secret's grace period, and a new lifetime.",
        "properties": {
            "gracePeriod": {"type": "string", "description": "protobuf Duration, e.g. 3600s"},
            "expires": {"type": "string", "description": "protobuf Duration, e.g. 2592000s"},
        },
    },
    "UsageResponse": {
        "type": "object",
        "description": "Both written in batches: they lag real use by up to a second.",
        "properties": {
            "lastUsedAt": {
                "type": "string",
                "format": "date-time",
                "description": "Absent: never used",
            },
            "addresses": {
                "type": "array",
                "maxItems": 5,
                "description": "The last distinct source addresses that minted a token, "
                "most recent first",
                "items": {
                    "type": "object",
                    "properties": {
                        "address": {"type": "string", "examples": ["203.0.113.7"]},
                        "lastUsedAt": {"type": "string", "format": "date-time"},
                    },
                },
            },
        },
    },
    "ListResponse": {
        "type": "object",
        "properties": {
            "list": {"type": "array", "items": _ref("PersonalClient")},
            "nextPageToken": {"type": "string"},
        },
    },
    "UpdateRequest": {
        "type": "object",
        "required": ["updateMask"],
        "properties": {
            "client": _ref("PersonalClient"),
            "updateMask": {
                "type": "string",
                "description": "Comma-separated field paths (camelCase or snake_case)",
            },
        },
    },
    "SearchRequest": {
        "type": "object",
        "description": "Unknown fields are ignored, as grpc-gateway does.",
        "properties": {
            "pageSize": {"type": "integer", "minimum": 0, "maximum": 100},
            "pageToken": {"type": "string"},
            "query": {"type": "string", "maxLength": 200},
            "users": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": {"type": "string"}}},
            },
        },
    },
    "FederationTrust": _TRUST,
    "CreateTrustRequest": {
        "type": "object",
        "required": ["issuer", "condition"],
        "description": "Unknown fields are ignored, as grpc-gateway does.",
        "properties": {
            "displayName": {"type": "string", "maxLength": 200},
            "issuer": {"type": "string"},
            "audience": {"type": "string"},
            "condition": {"type": "string", "maxLength": 1024},
            "allowSourceCidr": {"type": "array", "items": {"type": "string"}, "maxItems": 32},
            "scopedRoles": {"type": "array", "items": {"type": "string"}},
            "expires": {"type": "string", "description": "protobuf Duration, e.g. 2592000s"},
            "requireDpop": {"type": "boolean"},
        },
    },
    "TrustResponse": {"type": "object", "properties": {"trust": _ref("FederationTrust")}},
    "TrustListResponse": {
        "type": "object",
        "properties": {
            "list": {"type": "array", "items": _ref("FederationTrust")},
            "nextPageToken": {"type": "string"},
        },
    },
    "UpdateTrustRequest": {
        "type": "object",
        "required": ["updateMask"],
        "properties": {
            "trust": _ref("FederationTrust"),
            "updateMask": {
                "type": "string",
                "description": "Comma-separated field paths (camelCase or snake_case)",
            },
        },
    },
    "User": {
        "type": "object",
        "description": "ConductorOne's c1.api.user.v1.User, the fields authserver has.",
        "properties": {
            "id": {"type": "string"},
            "email": {"type": "string"},
            "username": {"type": "string", "description": "the e-mail"},
            "displayName": {"type": "string"},
            "status": {"type": "string", "enum": ["ENABLED", "DISABLED"]},
            "type": {"type": "string", "enum": ["USER_TYPE_HUMAN"]},
            "roleIds": {"type": "array", "items": {"type": "string"}},
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
        },
    },
    "UserView": {"type": "object", "properties": {"user": _ref("User")}},
    "UserResponse": {"type": "object", "properties": {"userView": _ref("UserView")}},
    "UserListResponse": {
        "type": "object",
        "properties": {
            "list": {"type": "array", "items": _ref("UserView")},
            "nextPageToken": {"type": "string"},
        },
    },
    "SearchUsersRequest": {
        "type": "object",
        "description": "Unknown fields are ignored, as grpc-gateway does.",
        "properties": {
            "query": {"type": "string", "maxLength": 320},
            "email": {"type": "string", "maxLength": 320},
            "ids": {"type": "array", "items": {"type": "string"}, "maxItems": 100},
            "pageSize": {"type": "integer", "minimum": 0, "maximum": 100},
            "pageToken": {"type": "string"},
        },
    },
    "IntrospectResponse": {
        "type": "object",
        "properties": {
            "principleId": {"type": "string"},
            "userId": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string"}},
            "permissions": {"type": "array", "items": {"type": "string"}},
            "features": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The document; ``servers`` points at the configured issuer."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "authserver management API", "version": "v1"},
        "servers": [{"url": settings.issuer}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": _SCHEMAS,
        },
        "paths": {
            "/api/v1/iam/personal_clients": {
                "post": {
                    "operationId": "CreatePersonalClient",
                    "requestBody": _body("CreateRequest"),
                    "responses": {"200": _json(_ref("CreateResponse")), **_ERRORS},
                },
                "get": {
                    "operationId": "ListPersonalClients",
                    "parameters": _PAGE,
                    "responses": {"200": _json(_ref("ListResponse")), **_ERRORS},
                },
            },
            "/api/v1/iam/personal_clients/{id}": {
                "get": {
                    "operationId": "GetPersonalClient",
                    "parameters": [_ID],
                    "responses": {"200": _json(_ref("ClientResponse")), **_ERRORS},
                },
                "post": {
                    "operationId": "UpdatePersonalClient",
                    "parameters": [_ID],
                    "requestBody": _body("UpdateRequest"),
                    "responses": {"200": _json(_ref("ClientResponse")), **_ERRORS},
                },
                "delete": {
                    "operationId": "DeletePersonalClient",
                    "parameters": [_ID],
                    "responses": {"200": _json({"type": "object"}), **_ERRORS},
                },
            },
            "/api/v1/iam/personal_clients/{id}/rotate": {
                "post": {
                    "operationId": "RotatePersonalClient",
                    "parameters": [_ID],
                    "requestBody": _body("RotateRequest"),
                    "responses": {"200": _json(_ref("CreateResponse")), **_ERRORS},
                },
            },
            "/api/v1/iam/personal_clients/{id}/usage": {
                "get": {
                    "operationId": "GetPersonalClientUsage",
                    "parameters": [_ID],
                    "responses": {"200": _json(_ref("UsageResponse")), **_ERRORS},
                },
            },
            "/api/v1/search/iam/personal_clients": {
                "post": {
                    "operationId": "SearchPersonalClients",
                    "requestBody": _body("SearchRequest"),
                    "responses": {"200": _json(_ref("ListResponse")), **_ERRORS},
                },
            },
            "/api/v1/iam/federation_trusts": {
                "post": {
                    "operationId": "CreateFederationTrust",
                    "requestBody": _body("CreateTrustRequest"),
                    "responses": {"200": _json(_ref("TrustResponse")), **_ERRORS},
                },
                "get": {
                    "operationId": "ListFederationTrusts",
                    "parameters": _PAGE,
                    "responses": {"200": _json(_ref("TrustListResponse")), **_ERRORS},
                },
            },
            "/api/v1/iam/federation_trusts/{id}": {
                "get": {
                    "operationId": "GetFederationTrust",
                    "parameters": [_ID],
                    "responses": {"200": _json(_ref("TrustResponse")), **_ERRORS},
                },
                "post": {
                    "operationId": "UpdateFederationTrust",
                    "parameters": [_ID],
                    "requestBody": _body("UpdateTrustRequest"),
                    "responses": {"200": _json(_ref("TrustResponse")), **_ERRORS},
                },
                "delete": {
                    "operationId": "DeleteFederationTrust",
                    "parameters": [_ID],
                    "responses": {"200": _json({"type": "object"}), **_ERRORS},
                },
            },
            "/api/v1/users": {
                "get": {
                    "operationId": "ListUsers",
                    "description": "The admin role sees everyone; others see themselves.",
                    "parameters": _PAGE,
                    "responses": {"200": _json(_ref("UserListResponse")), **_ERRORS},
                },
            },
            "/api/v1/users/{id}": {
                "get": {
                    "operationId": "GetUser",
                    "description": "The caller itself, or anyone for the admin role; else 404.",
                    "parameters": [_ID],
                    "responses": {"200": _json(_ref("UserResponse")), **_ERRORS},
                },
            },
            "/api/v1/search/users": {
                "post": {
                    "operationId": "SearchUsers",
                    "description": "query matches e-mail or display name; email matches exactly.",
                    "requestBody": _body("SearchUsersRequest"),
                    "responses": {"200": _json(_ref("UserListResponse")), **_ERRORS},
                },
            },
            "/api/v1/auth/introspect": {
                "get": {
                    "operationId": "Introspect",
                    "responses": {"200": _json(_ref("IntrospectResponse")), **_ERRORS},
                },
            },
        },
    }
