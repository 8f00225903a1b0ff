"""RFC 8693 token exchange at ``POST /auth/v1/token``: a CI job's ID token for an access
token of a federation trust's owner (SPEC section 12), as ConductorOne's clients send it.

Form: ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``,
``subject_token``, ``subject_token_type`` (``…:jwt`` or ``…:id_token``),
``client_id`` (the trust's), optional ``scope``; no client authentication. A trust
that may not be used now answers ``401 invalid_client``, a subject token it does not
accept ``400 invalid_grant``, each always with the same body; the precise reason goes
to the audit trail, and failures count against the source and the client id as
failed client authentications do. The trust's state comes from the state cache and
its issuer's keys from ``IssuerKeys``, so a valid exchange does no database I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from starlette.requests import Request

from authserver.domain.credentials import has_control_characters, refusal_reason
from authserver.domain.federation import (
    ISSUED_TOKEN_TYPE,
    SUBJECT_TOKEN_TYPES,
    TOKEN_EXCHANGE_GRANT_TYPE,
)
from authserver.oauth import dpop
from authserver.oauth.adapter import FormRequest
from authserver.oauth.client_auth import AuthenticatedClient, client_key, fail_authentication
from authserver.oauth.errors import InvalidClient, InvalidDpopProof
from authserver.oauth.server import ClientCredentialsGrant
from authserver.security import subject_tokens
from authserver.security.audit import audit
from authserver.security.throttle import source_key
from authserver.web.context import services_of
from authserver.web.source import source_address

#: The one answer to a subject token the trust does not accept (RFC 8693 section 2.2.2).
REFUSED = "the subject token was not accepted"


class TokenExchangeGrant(ClientCredentialsGrant):
    """RFC 8693: scope narrowing as for a personal client; the answer names its type."""

    GRANT_TYPE = TOKEN_EXCHANGE_GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        status, token, headers = super().create_token_response()
        # RFC 8693 section 2.2.1: issued_token_type is required.
        return status, {"issued_token_type": ISSUED_TOKEN_TYPE, **token}, headers


async def exchange(
    request: Request, form: Mapping[str, str], *, binding: Any | None
) -> FormRequest:
    """The checked exchange as an Authlib request, or the RFC 6749 error to answer."""
    services = services_of(request)
    settings = services.settings
    if "client_secret" in form or "client_assertion" in form or "authorization" in request.headers:
        raise InvalidRequestError("the token exchange takes no client authentication")
    if "actor_token" in form:
        raise InvalidRequestError("actor_token is not supported")
    requested = form.get("requested_token_type")
    if requested and requested != ISSUED_TOKEN_TYPE:
        raise InvalidRequestError(f"requested_token_type may only be {ISSUED_TOKEN_TYPE}")
    token = form.get("subject_token")
    if not token:
        raise InvalidRequestError("missing subject_token")
    if form.get("subject_token_type") not in SUBJECT_TOKEN_TYPES:
        raise InvalidRequestError(
            "subject_token_type must be urn:ietf:params:oauth:token-type:jwt or id_token"
        )
    client_id = form.get("client_id") or ""
    source = source_address(request, settings)
    keys = [source_key(source)]
    authenticator = services.authenticator
    try:
        if not client_id or len(client_id) > 255 or has_control_characters(client_id):
            raise fail_authentication(client_id or None, "no usable client_id", source)
        keys.append(client_key(client_id))
        state = await services.state_cache.credential(services.store.credentials, client_id)
        now = datetime.now(UTC)
        max_idle = settings.max_idle
        reason = refusal_reason(state, now=now, source=source, max_idle=max_idle)
        if reason == "idle":  # the cached lastUsedAt is as old as the entry: ask the database
            state = await anyio.to_thread.run_sync(
                lambda: services.store.credentials.auth_state(client_id=client_id)
            )
            reason = refusal_reason(state, now=now, source=source, max_idle=max_idle)
        if reason is None and state is not None and state.federation is None:
            reason = "not a federation trust"
        if reason is not None or state is None or state.federation is None:
            await authenticator.throttled(keys, client_id, reason, source)
            raise fail_authentication(client_id, reason or "unknown client_id", source)
        try:
            subject = await subject_tokens.verify(
                token,
                trust=state.federation,
                keys=services.issuer_keys,
                now=now,
                max_age=settings.federation_max_token_age,
            )
        except subject_tokens.SubjectTokenRefused as exc:
            audit(
                "token_exchange_refused",
                client_id=state.client_id,
                credential_id=state.id,
                user_id=state.user_id,
                reason=exc.reason,
                issuer=state.federation.issuer,
                source=source,
            )
            await authenticator.throttled(keys, client_id, exc.reason, source)
            raise InvalidGrantError(REFUSED) from None
    except (InvalidClient, InvalidGrantError):
        await anyio.to_thread.run_sync(lambda: authenticator.throttle.record_failure(tuple(keys)))
        raise
    if binding is None and state.require_dpop:
        raise InvalidDpopProof("this trust gets tokens only with a DPoP proof")
    jkt = await dpop.spend(request, binding) if binding is not None else None
    oauth_request = FormRequest(
        method="POST",
        uri=settings.endpoint("/auth/v1/token"),
        headers=request.headers,
        form=dict(form),
    )
    oauth_request.authenticated = AuthenticatedClient(
        state=state,
        method="none",
        source=str(source) if source else None,
        dpop_jkt=jkt,
        grant_type=TOKEN_EXCHANGE_GRANT_TYPE,
        act=subject.act,
    )
    return oauth_request
