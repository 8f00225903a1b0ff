"""JSON shapes shared by the management API and the CLI (protobuf-JSON style, camelCase)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from authserver.records import (
    AuditEventRecord,
    ClientRecord,
    CredentialUsage,
    KeyRecord,
    TrustRecord,
    UserRecord,
)


def timestamp(value: datetime | None) -> str | None:
    """RFC 3339 UTC with a ``Z``; None stays None."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return text.replace(".000000Z", "Z")


def _drop_empty(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if v is not None}


def client_json(client: ClientRecord) -> dict[str, Any]:
    return _drop_empty(
        {
            "id": client.id,
            "clientId": client.client_id,
            "userId": client.user_id,
            "displayName": client.display_name,
            "allowSourceCidr": list(client.allow_source_cidr),
            "scopedRoles": list(client.scoped_roles),
            "expiresTime": timestamp(client.expires_time),
            "lastUsedAt": timestamp(client.last_used_at),
            "createdAt": timestamp(client.created_at),
            "updatedAt": timestamp(client.updated_at),
            "deletedAt": timestamp(client.deleted_at),
            # Present only when true: ConductorOne's SDKs see their usual shape otherwise.
            "requireDpop": True if client.require_dpop else None,
        }
    )


def trust_json(trust: TrustRecord) -> dict[str, Any]:
    """A federation trust (SPEC section 12), shaped like a personal client."""
    return _drop_empty(
        {
            "id": trust.id,
            "clientId": trust.client_id,
            "userId": trust.user_id,
            "displayName": trust.display_name,
            "issuer": trust.issuer,
            "audience": trust.audience,
            "condition": trust.condition,
            "allowSourceCidr": list(trust.allow_source_cidr),
            "scopedRoles": list(trust.scoped_roles),
            "expiresTime": timestamp(trust.expires_time),
            "lastUsedAt": timestamp(trust.last_used_at),
            "createdAt": timestamp(trust.created_at),
            "updatedAt": timestamp(trust.updated_at),
            "deletedAt": timestamp(trust.deleted_at),
            "requireDpop": True if trust.require_dpop else None,
        }
    )


def usage_json(usage: CredentialUsage) -> dict[str, Any]:
    """``GET …/{id}/usage``: ``lastUsedAt`` (absent: never) and the recent source addresses,
    most recent first. Kept apart from the PersonalClient, whose shape is ConductorOne's."""
    return _drop_empty(
        {
            "lastUsedAt": timestamp(usage.last_used_at),
            "addresses": [
                {"address": use.address, "lastUsedAt": timestamp(use.last_used_at)}
                for use in usage.addresses
            ],
        }
    )


def user_json(user: UserRecord) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "displayName": user.display_name,
        "roles": list(user.roles),
        "disabled": user.disabled,
        "createdAt": timestamp(user.created_at),
        "updatedAt": timestamp(user.updated_at),
    }


def conductorone_user_json(user: UserRecord) -> dict[str, Any]:
    """ConductorOne's ``c1.api.user.v1.User``, the fields authserver has: ``username`` is
    the e-mail, ``roleIds`` the role names, every user a human."""
    return {
        "id": user.id,
        "email": user.email,
        "username": user.email,
        "displayName": user.display_name,
        "status": "DISABLED" if user.disabled else "ENABLED",
        "type": "USER_TYPE_HUMAN",
        "roleIds": list(user.roles),
        "createdAt": timestamp(user.created_at),
        "updatedAt": timestamp(user.updated_at),
    }


def key_json(key: KeyRecord) -> dict[str, Any]:
    return _drop_empty(
        {
            "kid": key.kid,
            "alg": key.alg,
            "active": key.retired_at is None,
            "createdAt": timestamp(key.created_at),
            "retiredAt": timestamp(key.retired_at),
            "publishUntil": timestamp(key.publish_until),
        }
    )


def audit_event_json(event: AuditEventRecord) -> dict[str, Any]:
    """An audit event as ``authserver audit export`` prints it (one JSON line each)."""
    return _drop_empty(
        {
            "id": event.id,
            "time": timestamp(event.at),
            "event": event.event,
            "actor": event.actor,
            "userId": event.user_id,
            "credentialId": event.credential_id,
            "clientId": event.client_id,
            "source": event.source,
            "requestId": event.request_id,
            "details": dict(event.details) or None,
        }
    )
