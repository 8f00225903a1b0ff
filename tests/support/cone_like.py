"""What ``cone login`` sends, request for request: ``python cone_like.py BASE_URL CLIENT_ID``.

Taken from ConductorOne's Go SDK (``login.go``, which ``cone login`` calls):
- ``POST {base}/auth/v1/device_authorization``, form ``client_id`` only (no scope),
  User-Agent ``conductorone-sdk-go``; reads device_code, user_code,
  verification_uri_complete, expires_in, interval; fails when
  verification_uri_complete is empty.
- Waits ``interval`` seconds *before* every poll of ``POST {base}/auth/v1/token``
  (form client_id, device_code, grant_type device_code); ``authorization_pending``
  continues; any other error, ``slow_down`` included, ends the login with the
  error's description.
- With the token: ``POST {base}/api/v1/iam/personal_clients`` with the JSON body
  ``{"display_name":"Created by Cone"}`` and ``Authorization: Bearer``; expects
  HTTP 200 and reads ``client.clientId`` and ``clientSecret``.
- All over one pooled keep-alive connection, as Go's HTTP client: a POST is never
  retried on a new connection, so a server that closed the idle connection between
  two polls ends the login with ``Post …: EOF``.
Prints one JSON line when the user code is known, and one with the result; exits 1
with the error on stderr otherwise.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HEADERS = {"User-Agent": "conductorone-sdk-go"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Answer:
    def __init__(self, status_code: int, text: str) -> None:
        self.status_code, self.text = status_code, text

    def json(self) -> Any:
        return json.loads(self.text)


class PooledConnection:
    """One keep-alive connection that is never reopened behind the caller's back."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self.conn = kind(parts.hostname or "", parts.port, timeout=60)
        self.conn.connect()
        self.conn.auto_open = 0

    def post(self, path: str, body: str, headers: dict[str, str]) -> Answer:
        try:
            self.conn.request("POST", path, body=body, headers={**HEADERS, **headers})
            response = self.conn.getresponse()
            return Answer(response.status, response.read().decode())
        except (http.client.HTTPException, OSError) as exc:
            raise SystemExit(f"Post {path}: EOF ({exc!r})") from None

    def close(self) -> None:
        self.conn.close()


def main() -> int:
    base, client_id = sys.argv[1], sys.argv[2]
    http = PooledConnection(base)
    try:
        answer = http.post(
            "/auth/v1/device_authorization", urlencode({"client_id": client_id}), FORM
        )
        if answer.status_code != 200:
            print(f"error getting device code: {answer.text}", file=sys.stderr)
            return 1
        started = answer.json()
        if not started.get("verification_uri_complete"):
            print("invalid verification url", file=sys.stderr)
            return 1
        print(json.dumps({"user_code": started["user_code"],
                          "url": started["verification_uri_complete"]}), flush=True)  # fmt: skip
        interval, deadline = int(started["interval"]), time.time() + int(started["expires_in"])
        while True:
            time.sleep(interval)
            if time.time() > deadline:
                print("timeout", file=sys.stderr)
                return 1
            polled = http.post(
                "/auth/v1/token",
                urlencode({"client_id": client_id, "device_code": started["device_code"],
                           "grant_type": GRANT}),
                FORM,
            )  # fmt: skip
            body = polled.json()
            if polled.status_code == 200:
                break
            if body.get("error") == "authorization_pending":
                continue
            print(body.get("error_description") or body.get("error"), file=sys.stderr)
            return 1
        if body.get("token_type") != "Bearer" or not isinstance(body.get("expires_in"), int):
            print(f"unexpected token response: {sorted(body)}", file=sys.stderr)
            return 1
        created = http.post(
            "/api/v1/iam/personal_clients",
            json.dumps({"display_name": "Created by Cone"}),
            {"Content-Type": "application/json",
             "Authorization": "Bearer " + body["access_token"]},
        )  # fmt: skip
        if created.status_code != 200:
            print(f"error getting client credential code: {created.text}", file=sys.stderr)
            return 1
        result = created.json()
        print(json.dumps({"client_id": result["client"]["clientId"],
                          "client_secret": result["clientSecret"]}), flush=True)  # fmt: skip
    finally:
        http.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
