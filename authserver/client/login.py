"""``authserver login``: get a personal client through the device flow, as ``cone login`` does.

RFC 8628 from the client's side: ask for a device code, show the person the
code and the page to approve it on, poll the token endpoint at the interval
the server asks for, then create a personal client with the person's token
and keep its secret in a file only its owner can read. Standard library only,
so the command needs nothing the server does not already install.

While polling, a server that does not answer (a connection error, or HTTP 502,
503 or 504 from it or its proxy) is asked again with the wait doubled each
time, until the code expires (RFC 8628 §3.5): an instance restarting during a
login must not end it.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from authserver.client import credential_file

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_CLIENT_ID = "authserver-cli"
SLOW_DOWN_STEP = 5
TIMEOUT = 30
#: The credential's lifetime unless ``--expires`` says otherwise: the page's preset.
DEFAULT_EXPIRES = timedelta(days=30)
#: The longest wait between polls while the server does not answer.
MAX_BACKOFF = 60
UNAVAILABLE_STATUSES = (502, 503, 504)


class LoginError(Exception):
    """The login could not finish; the message says why, in one line."""


class ServerUnavailable(LoginError):
    """No answer, or HTTP 502/503/504: worth asking again while the code lives."""


@dataclass(frozen=True)
class Saved:
    """Where the new credential went."""

    client_id: str
    path: Path


def default_output() -> Path:
    """Where the credential goes, and where ``authserver token`` looks for it."""
    return credential_file.default_path()


def _post(url: str, *, form: dict[str, str] | None = None, json_body: Any = None,
          bearer: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        data = json.dumps(json_body).encode()
        content_type = "application/json"
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", content_type)
    request.add_header("Accept", "application/json")
    if bearer is not None:
        request.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServerUnavailable(f"cannot reach {url}: {reason}") from None
    if status in UNAVAILABLE_STATUSES:
        raise ServerUnavailable(f"{url} is unavailable right now (HTTP {status})")
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        raise LoginError(f"{url} answered HTTP {status} without JSON") from None
    if not isinstance(body, dict):
        raise LoginError(f"{url} answered HTTP {status} with unexpected JSON")
    return status, body


def _oauth_error(body: dict[str, Any]) -> str:
    error = str(body.get("error", "error"))
    description = body.get("error_description")
    return f"{error}: {description}" if description else error


def login(
    issuer: str,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    name: str | None = None,
    expires_in: timedelta | None = DEFAULT_EXPIRES,
    scoped_roles: Sequence[str] = (),
    output: Path | None = None,
    force: bool = False,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> Saved:
    """Run the device flow against ``issuer`` and save the new credential to ``output``.

    The credential expires after ``expires_in`` (None: never) and is reduced to
    ``scoped_roles`` when given; the server's rules decide whether it may be.
    """
    issuer = issuer.rstrip("/")
    output = output or default_output()
    if output.exists() and not force:
        raise LoginError(f"{output} exists; pass --force to replace it, or --output elsewhere")
    status, started = _post(f"{issuer}/auth/v1/device_authorization", form={"client_id": client_id})
    if status == 401 and started.get("error") == "invalid_client":
        raise LoginError(
            "this server does not allow `authserver login`: its operator enables it by adding"
            f' a [[device_clients]] table with id = "{client_id}" (and a name) to its'
            " configuration"
        )
    if status != 200:
        raise LoginError(f"the server refused to start: {_oauth_error(started)}")
    for field in ("device_code", "user_code", "verification_uri_complete", "expires_in"):
        if not started.get(field):
            raise LoginError(f"the server's answer lacks {field}")
    say(f"First copy your one-time code: {started['user_code']}")
    say(f"Then open this page in your browser and approve: {started['verification_uri_complete']}")
    say("Waiting for your approval...")
    token = _poll(issuer, client_id, started, sleep, say)
    request: dict[str, Any] = {
        "display_name": name or f"authserver login on {socket.gethostname()}"
    }
    if expires_in is not None:
        request["expires"] = f"{int(expires_in.total_seconds())}s"
    if scoped_roles:
        request["scopedRoles"] = list(scoped_roles)
    status, created = _post(
        f"{issuer}/api/v1/iam/personal_clients", json_body=request, bearer=token
    )
    if status != 200:
        raise LoginError(f"creating the credential failed: {created.get('message', status)}")
    credential = {
        "issuer": issuer,
        "client_id": created["client"]["clientId"],
        "client_secret": created["clientSecret"],
    }
    _write_private(output, json.dumps(credential, indent=2) + "\n")
    return Saved(client_id=credential["client_id"], path=output)


def _poll(
    issuer: str,
    client_id: str,
    started: dict[str, Any],
    sleep: Callable[[float], None],
    say: Callable[[str], None],
) -> str:
    interval = int(started.get("interval") or 5)
    wait = interval
    deadline = time.monotonic() + int(started["expires_in"])
    form = {
        "grant_type": DEVICE_GRANT,
        "client_id": client_id,
        "device_code": started["device_code"],
    }
    last_unavailable: ServerUnavailable | None = None
    while True:
        sleep(wait)
        if time.monotonic() > deadline:
            if last_unavailable is not None:
                raise LoginError(
                    f"the code expired while the server did not answer: {last_unavailable}"
                )
            raise LoginError("the code expired before it was approved; run the command again")
        try:
            status, body = _post(f"{issuer}/auth/v1/token", form=form)
        except ServerUnavailable as unavailable:
            last_unavailable = unavailable
            wait = min(wait * 2, MAX_BACKOFF)
            say(f"{unavailable}; trying again in {wait} s")
            continue
        last_unavailable = None
        wait = interval
        if status == 200 and body.get("access_token"):
            return str(body["access_token"])
        error = body.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += SLOW_DOWN_STEP
            wait = interval
            continue
        if error == "access_denied":
            raise LoginError("the request was denied in the browser")
        if error == "expired_token":
            raise LoginError("the code expired before it was approved; run the command again")
        raise LoginError(f"the server refused the login: {_oauth_error(body)}")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only (0600, in a 0700 folder), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
