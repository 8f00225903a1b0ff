"""RFC 8628 device authorization on Authlib's ``rfc8628`` building blocks.

``POST /auth/v1/device_authorization`` starts it (Authlib's
``DeviceAuthorizationEndpoint``); the token endpoint finishes it with
``grant_type=urn:ietf:params:oauth:grant-type:device_code`` (Authlib's
``DeviceCodeGrant``). Device clients are public (config ``device_clients``):
they authenticate with their ``client_id`` only. As everywhere, storage runs
before or beside Authlib in a worker thread: the poll's outcome, claimed
atomically in the database, is handed to the grant on the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
)
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint
from authlib.oauth2.rfc8628 import DeviceCodeGrant as AuthlibDeviceCodeGrant
from authlib.oauth2.rfc8628.errors import (
    AuthorizationPendingError,
    ExpiredTokenError,
    SlowDownError,
)
from authlib.oauth2.rfc8628.models import DeviceCredentialMixin
from starlette.requests import Request
from starlette.responses import Response

from authserver.config import DeviceClient
from authserver.errors import InvalidArgument
from authserver.oauth.adapter import FormRequest, read_form
from authserver.oauth.client_auth import fail_authentication
from authserver.oauth.errors import TooManyAttempts, oauth_errors
from authserver.records import DeviceAuthorization
from authserver.security.logsafe import quiet_authlib
from authserver.security.throttle import source_key
from authserver.store.device_codes import SLOW_DOWN_STEP, PollOutcome
from authserver.usecases.devices import (
    DEVICE_CODE_TTL,
    DeviceFlowService,
    new_device_code,
    new_user_code,
)
from authserver.web.context import services_of
from authserver.web.source import source_address

DEVICE_CODE_GRANT_TYPE: str = AuthlibDeviceCodeGrant.GRANT_TYPE
PATH = "/auth/v1/device_authorization"
quiet_authlib()  # the device-code grant logs each token it issues at debug level
VERIFICATION_PATH = "/ui/device"


@dataclass(frozen=True)
class DeviceClientAuth:
    """A configured device client, as Authlib's ``ClientMixin`` wants it (method "none")."""

    client: DeviceClient
    method: str = "none"
    dpop_jkt: str | None = None  # the key a DPoP proof bound the token to (RFC 9449)

    @property
    def client_id(self) -> str:
        return self.client.id

    def get_client_id(self) -> str:
        return self.client.id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == DEVICE_CODE_GRANT_TYPE


@dataclass(frozen=True)
class Approval:
    """Who approved a device, and the roles granted: the ``user`` of the device grant."""

    user_id: str
    roles: tuple[str, ...]


class DeviceAuthorizationEndpointImpl(DeviceAuthorizationEndpoint):
    """RFC 8628 section 3.1/3.2 with our codes, storage and verification URI."""

    CLIENT_AUTH_METHODS = ["none"]
    EXPIRES_IN = int(DEVICE_CODE_TTL.total_seconds())

    def __init__(self, server: Any, devices: DeviceFlowService, verification_uri: str) -> None:
        super().__init__(server)
        self.devices = devices
        self.verification_uri = verification_uri
        self.INTERVAL = devices.settings.device_poll_interval

    def generate_device_code(self) -> str:
        return new_device_code()

    def generate_user_code(self) -> str:
        return new_user_code()

    def get_verification_uri(self) -> str:
        return self.verification_uri

    def save_device_credential(
        self, client_id: str, scope: str | None, data: dict[str, Any]
    ) -> None:
        client = self.devices.client(client_id)
        assert client is not None  # authenticated before Authlib ran
        try:
            self.devices.start(
                client=client,
                device_code=data["device_code"],
                user_code=data["user_code"],
                scope=scope,
                now=datetime.now(UTC),
            )
        except InvalidArgument as exc:
            raise InvalidScopeError(exc.message) from None


@dataclass(frozen=True)
class _PolledCredential(DeviceCredentialMixin):
    """The device authorization a poll found, as Authlib's grant asks about it."""

    outcome: PollOutcome
    record: DeviceAuthorization

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_scope(self) -> str:
        return " ".join(self.record.roles or ())

    def get_user_code(self) -> str:
        return ""  # the decision travels with the poll (query_user_grant)

    def is_expired(self) -> bool:
        return self.outcome == "expired"


class DeviceCodeGrant(AuthlibDeviceCodeGrant):
    """RFC 8628 section 3.4/3.5: Authlib's grant over the poll claimed in the database."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def _poll(self) -> tuple[PollOutcome, DeviceAuthorization | None]:
        poll: tuple[PollOutcome, DeviceAuthorization | None] = self.request.device_poll
        return poll

    def query_device_credential(self, device_code: str) -> _PolledCredential:
        outcome, record = self._poll()
        if record is None or outcome in ("invalid", "used"):
            # Unknown, another client's, or already exchanged: RFC 6749 section 5.2.
            raise InvalidGrantError("the device code is invalid or was already used")
        if outcome == "refused":
            raise InvalidGrantError("the account that approved this code cannot sign in now")
        return _PolledCredential(outcome, record)

    def query_user_grant(self, user_code: str) -> tuple[Approval | None, bool] | None:
        outcome, record = self._poll()
        if outcome == "approved" and record is not None and record.user_id is not None:
            return Approval(record.user_id, record.roles or ()), True
        if outcome == "denied":
            return None, False
        return None

    def should_slow_down(self, credential: _PolledCredential) -> bool:
        return credential.outcome == "slow_down"

    def validate_device_credential(self, credential: _PolledCredential) -> Approval:
        """Authlib's decision table, with descriptions a person can act on (cone prints them)."""
        try:
            approval: Approval = super().validate_device_credential(credential)
        except ExpiredTokenError:
            raise ExpiredTokenError("the code expired before it was approved") from None
        except AccessDeniedError:
            raise AccessDeniedError("the request was denied in the browser") from None
        except SlowDownError:
            raise SlowDownError(
                f"polling too fast: wait {credential.record.interval + SLOW_DOWN_STEP} "
                "seconds between requests"
            ) from None
        except AuthorizationPendingError:
            raise AuthorizationPendingError("waiting for the person to approve") from None
        return approval


async def device_authorization_endpoint(request: Request) -> Response:
    """``POST /auth/v1/device_authorization``."""
    return await _start(request)


@oauth_errors
async def _start(request: Request) -> Response:
    services = services_of(request)
    form = await read_form(request, max_bytes=services.settings.max_body_bytes)
    source = source_address(request, services.settings)
    key = (source_key(source),)
    wait = await anyio.to_thread.run_sync(lambda: services.device_starts.retry_after(key))
    if wait:
        raise TooManyAttempts(wait)
    client = services.devices.client(form.get("client_id"))
    if client is None or "authorization" in request.headers:
        # Public clients present their id only; anything else is not a device client.
        raise fail_authentication(form.get("client_id"), "not a device client", source)
    # Every start counts: codes fill the database.
    await anyio.to_thread.run_sync(lambda: services.device_starts.record_failure(key))
    oauth_request = FormRequest(
        method="POST", uri=services.settings.endpoint(PATH), headers=request.headers, form=form
    )
    oauth_request.authenticated = DeviceClientAuth(client)
    response: Response = await anyio.to_thread.run_sync(
        lambda: services.server.create_endpoint_response("device_authorization", oauth_request)
    )
    return response


async def device_token(
    request: Request, form: dict[str, str], *, dpop_jkt: str | None = None
) -> FormRequest:
    """The token request of a polling device client, with its poll's outcome on it."""
    services = services_of(request)
    client = services.devices.client(form.get("client_id"))
    if client is None or "authorization" in request.headers:
        raise fail_authentication(
            form.get("client_id"),
            "not a device client",
            source_address(request, services.settings),
        )
    device_code = form.get("device_code")
    if not device_code:
        raise InvalidRequestError("missing device_code")
    poll = await anyio.to_thread.run_sync(
        lambda: services.devices.poll(
            device_code=device_code, client_id=client.id, now=datetime.now(UTC)
        )
    )
    oauth_request = FormRequest(
        method="POST",
        uri=services.settings.endpoint("/auth/v1/token"),
        headers=request.headers,
        form=form,
    )
    oauth_request.authenticated = DeviceClientAuth(client, dpop_jkt=dpop_jkt)
    oauth_request.device_poll = poll
    return oauth_request
