"""``POST /auth/v1/token``: RFC 6749 section 4.4 ``client_credentials``, RFC 8628's device
code grant and RFC 8693's token exchange (federation trusts); with a ``DPoP`` proof
(RFC 9449) the token is bound to the client's key."""

from __future__ import annotations

import dataclasses
import time

from authlib.oauth2.rfc6749.errors import InvalidRequestError, UnsupportedGrantTypeError
from starlette.requests import Request
from starlette.responses import Response

from authserver.domain.federation import TOKEN_EXCHANGE_GRANT_TYPE
from authserver.oauth import dpop
from authserver.oauth.adapter import FormRequest, read_form
from authserver.oauth.device_flow import DEVICE_CODE_GRANT_TYPE, device_token
from authserver.oauth.errors import InvalidDpopProof, oauth_errors, printable
from authserver.oauth.token_exchange import exchange
from authserver.web.context import services_of


async def token_endpoint(request: Request) -> Response:
    """Count and time every answer of the token endpoint."""
    services = services_of(request)
    started = time.perf_counter()
    request.state.oauth_error = None
    response = await _issue(request)
    services.metrics.token_answered(
        request.state.oauth_error or "issued", time.perf_counter() - started
    )
    return response


@oauth_errors
async def _issue(request: Request) -> Response:
    services = services_of(request)
    form = await read_form(request, max_bytes=services.settings.max_body_bytes)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise InvalidRequestError("missing grant_type")
    binding = dpop.check_token_request(request)  # no I/O: a bad proof is refused first
    if grant_type == "client_credentials":
        client = await services.authenticator.authenticate(request, form)
        if binding is None and client.state.require_dpop:
            raise InvalidDpopProof("this client gets tokens only with a DPoP proof")
        jkt = await dpop.spend(request, binding) if binding is not None else None
        oauth_request = FormRequest(
            method="POST",
            uri=services.settings.endpoint("/auth/v1/token"),
            headers=request.headers,
            form=form,
        )
        oauth_request.authenticated = dataclasses.replace(client, dpop_jkt=jkt)
    elif grant_type == DEVICE_CODE_GRANT_TYPE:
        # Spent before the poll, which claims the approval: a replayed proof keeps the code.
        jkt = await dpop.spend(request, binding) if binding is not None else None
        oauth_request = await device_token(request, form, dpop_jkt=jkt)
    elif grant_type == TOKEN_EXCHANGE_GRANT_TYPE:  # RFC 8693, federation trusts (SPEC 12)
        oauth_request = await exchange(request, form, binding=binding)
    else:
        raise UnsupportedGrantTypeError(printable(grant_type))
    response: Response = services.server.create_token_response(oauth_request)
    request.state.oauth_error = oauth_request.error
    return response
