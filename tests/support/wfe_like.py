"""What ConductorOne's Go SDK and ``cone`` send for workload federation, request for request:
``CONDUCTORONE_OIDC_TOKEN=… python wfe_like.py BASE_URL CLIENT_ID``.

Taken from ConductorOne's Go SDK (``token_exchange.go``: ``NewTokenExchangeSource``, which
``NewWithOIDCToken`` and ``NewWithEnv`` use when ``CONDUCTORONE_OIDC_TOKEN`` is set) and
from ``cone`` (``pkg/client/token_exchange.go``, the same code):
- ``POST {base}/auth/v1/token`` (the SDK builds ``https://<host>/auth/v1/token`` from the
  client id's host; the tests give the loopback base URL), ``Content-Type:
  application/x-www-form-urlencoded``, User-Agent ``conductorone-sdk-go-wfe``, the form
  ``url.Values{grant_type, subject_token, subject_token_type, client_id}`` encoded by
  Go's ``Values.Encode`` (keys sorted), with ``grant_type`` RFC 8693's and
  ``subject_token_type`` ``urn:ietf:params:oauth:token-type:jwt``; no client
  authentication, no scope.
- Any status but 200 fails with ``token exchange failed: <status>``; the body decodes into
  ``{access_token, token_type, expires_in}`` (other fields ignored); an empty
  ``access_token`` fails with ``token exchange failed: empty access token``.
- The token is then sent as ``Authorization: Bearer`` (``oauth2.Token`` with its
  ``TokenType``); ``cone whoami`` reads ``GET /api/v1/auth/introspect``.
Prints one JSON line ``{"token_type","expires_in","whoami"}``; exits 1 with the error on
stderr otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlencode

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
USER_AGENT = "conductorone-sdk-go-wfe"


def post_form(url: str, form: dict[str, str]) -> tuple[int, str, bytes]:
    body = urlencode(sorted(form.items())).encode()  # Go's url.Values.Encode sorts by key
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.reason, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.reason, exc.read()


def main() -> int:
    base, client_id = sys.argv[1].rstrip("/"), sys.argv[2]
    oidc_token = os.environ.get("CONDUCTORONE_OIDC_TOKEN", "")
    if not oidc_token:
        print("CONDUCTORONE_OIDC_TOKEN requires CONDUCTORONE_CLIENT_ID", file=sys.stderr)
        return 1
    status, reason, body = post_form(
        f"{base}/auth/v1/token",
        {
            "grant_type": GRANT,
            "subject_token": oidc_token,
            "subject_token_type": SUBJECT_TOKEN_TYPE,
            "client_id": client_id,
        },
    )
    if status != 200:
        print(f"token exchange failed: {status} {reason}", file=sys.stderr)
        return 1
    decoded = json.loads(body)
    token = {k: decoded.get(k) for k in ("access_token", "token_type", "expires_in")}
    if not token["access_token"]:
        print("token exchange failed: empty access token", file=sys.stderr)
        return 1
    request = urllib.request.Request(
        f"{base}/api/v1/auth/introspect",
        headers={"Authorization": f"{token['token_type']} {token['access_token']}",
                 "User-Agent": "conductorone-sdk-go"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            whoami = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        print(f"whoami failed: {exc.code}", file=sys.stderr)
        return 1
    print(json.dumps({"token_type": token["token_type"], "expires_in": token["expires_in"],
                      "whoami": whoami}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
