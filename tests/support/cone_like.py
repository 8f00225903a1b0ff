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
Prints one JSON line when the user code is known, and one with the result; exits 1
with the error on stderr otherwise.
"""

from __future__ import annotations

import json
import sys
import time

import httpx

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HEADERS = {"User-Agent": "conductorone-sdk-go"}


def main() -> int:
    base, client_id = sys.argv[1], sys.argv[2]
    with httpx.Client(timeout=60, headers=HEADERS) as http:
        answer = http.post(f"{base}/auth/v1/device_authorization", data={"client_id": client_id})
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
                f"{base}/auth/v1/token",
                data={"client_id": client_id, "device_code": started["device_code"],
                      "grant_type": GRANT},
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
            f"{base}/api/v1/iam/personal_clients",
            content=json.dumps({"display_name": "Created by Cone"}),
            headers={"Content-Type": "application/json",
                     "Authorization": "Bearer " + body["access_token"]},
        )  # fmt: skip
        if created.status_code != 200:
            print(f"error getting client credential code: {created.text}", file=sys.stderr)
            return 1
        result = created.json()
        print(json.dumps({"client_id": result["client"]["clientId"],
                          "client_secret": result["clientSecret"]}), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
