"""The credential ``authserver login`` saved: where it lives, reading it, a token from it.

The file is JSON with ``issuer``, ``client_id`` and ``client_secret``, readable
by its owner only. ``authserver token`` prints an access token from it;
``TokenAuth.from_file`` and ``RequestsTokenAuth.from_file`` call an API with it.
Standard library only, like ``login``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from authserver.client.tokens import TokenCache

TIMEOUT = 30


class CredentialFileError(Exception):
    """The saved credential is missing or unreadable; the message says why, in one line."""


@dataclass(frozen=True)
class SavedCredential:
    issuer: str
    client_id: str
    client_secret: str

    def __repr__(self) -> str:  # never the secret
        return f"SavedCredential({self.issuer!r}, {self.client_id!r})"


def default_path() -> Path:
    """``$XDG_CONFIG_HOME/authserver/credential.json`` (``~/.config`` without it)."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "authserver" / "credential.json"


def read_credential(path: Path | str | None = None) -> SavedCredential:
    """The credential in ``path`` (default: where ``authserver login`` saves it)."""
    path = Path(path) if path is not None else default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialFileError(
            f"no saved credential at {path}; run `authserver login --issuer URL` first"
        ) from None
    except OSError as error:
        raise CredentialFileError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    fields = ("issuer", "client_id", "client_secret")
    if not isinstance(document, dict) or not all(
        isinstance(document.get(f), str) and document[f] for f in fields
    ):
        raise CredentialFileError(
            f"{path} is not a saved credential (JSON with issuer, client_id and client_secret)"
        )
    return SavedCredential(
        issuer=document["issuer"].rstrip("/"),
        client_id=document["client_id"],
        client_secret=document["client_secret"],
    )


def fetch_token(credential: SavedCredential, *, scope: str | None = None) -> str:
    """An access token for ``credential`` (``private_key_jwt``: the secret stays here).

    Raises ``TokenError`` when the server refuses, ``CredentialFileError`` when the
    file's secret is not one, and ``OSError`` when the server cannot be reached.
    """
    return fetch(token_cache(credential, scope=scope))


def token_cache(
    credential: SavedCredential, *, scope: str | None = None, dpop: bool = False
) -> TokenCache:
    """A ``TokenCache`` for ``credential`` (with ``dpop``, its tokens bound to this process)."""
    try:
        return TokenCache(
            credential.issuer,
            credential.client_id,
            credential.client_secret,
            scope=scope,
            dpop=dpop,
        )
    except ValueError:
        raise CredentialFileError("the saved client_secret is not an authserver secret") from None


def fetch(tokens: TokenCache) -> str:
    """A token for ``tokens``; a DPoP nonce the server asks for is fetched and used once."""
    status, headers, body = _post(tokens)
    if tokens.wants_nonce(status, headers):
        status, headers, body = _post(tokens)
    return tokens.store(status, body)


def _post(tokens: TokenCache) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        tokens.token_url,
        data=urllib.parse.urlencode(tokens.form()).encode(),
        headers=tokens.token_headers(),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers.items()), error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise OSError(f"cannot reach {tokens.token_url}: {reason}") from None


def _lower(items: list[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}
