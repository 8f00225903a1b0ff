"""JSON request bodies: strict parsing, camelCase/snake_case keys, typed field access.

Every problem is an ``InvalidArgument`` (code 3) whose message names the field.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from authserver.errors import InvalidArgument
from authserver.http_body import read_body

MAX_JSON_BYTES = 65536
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is ``{}``).

    The Content-Type is not checked (``curl -d`` sends a form type): the body
    must parse as JSON whatever it claims. Bearer authentication makes this
    safe from cross-site form posts.
    """
    raw = await read_body(request, limit=MAX_JSON_BYTES)
    if raw is None:
        raise InvalidArgument(f"request body larger than {MAX_JSON_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"malformed JSON body: {exc}") from None
    except RecursionError:
        raise InvalidArgument("malformed JSON body: nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidArgument("the JSON body must be an object")
    return document


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def fields(
    document: dict[str, Any],
    *,
    allowed: Iterable[str],
    ignored: Iterable[str] = (),
    where: str = "",
) -> dict[str, Any]:
    """Keys normalised to camelCase; unknown keys (and a key given in both forms) are refused."""
    allowed_set, ignored_set = set(allowed), set(ignored)
    result: dict[str, Any] = {}
    for key, value in document.items():
        name = camel(key)
        label = f"{where}{key}"
        if name not in allowed_set and name not in ignored_set:
            raise InvalidArgument(f"unknown field {label!r}")
        if name in result:
            raise InvalidArgument(f"field {label!r} given twice (camelCase and snake_case)")
        if name in allowed_set:
            result[name] = value
    return result


def optional_string(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidArgument(f"{name}: expected a string")
    return value


def string_list(document: dict[str, Any], name: str) -> list[str]:
    value = document.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{name}: expected a list of strings")
    return value


def optional_timestamp(document: dict[str, Any], name: str) -> datetime | None:
    """RFC 3339 with an explicit offset (``Z`` or ``+hh:mm``), returned in UTC."""
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or "T" not in value.upper():
        raise InvalidArgument(f"{name}: expected an RFC 3339 timestamp")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise InvalidArgument(f"{name}: expected an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise InvalidArgument(f"{name}: the timestamp needs a time zone offset (e.g. Z)")
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidArgument(f"{name}: out of range") from None
    if not 1970 <= utc.year <= 9998:
        raise InvalidArgument(f"{name}: out of range")
    return utc


def page_size(value: Any) -> int:
    """``pageSize``: absent or 0 means the default; at most 100."""
    if value is None or value == "" or value == 0:
        return DEFAULT_PAGE_SIZE
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument("pageSize: expected a non-negative integer")
    return min(value, MAX_PAGE_SIZE)


def encode_page_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).rstrip(b"=").decode()


def decode_page_token(token: Any) -> str | None:
    """The id a page token continues after; empty means the first page."""
    if token is None or token == "":
        return None
    if not isinstance(token, str) or len(token) > 200:
        raise InvalidArgument("pageToken: malformed")
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise InvalidArgument("pageToken: malformed") from None
    if not text.startswith("v1:") or not is_record_id(text[3:]):
        raise InvalidArgument("pageToken: malformed")
    return text[3:]


def is_record_id(value: str) -> bool:
    """Record ids are 26 lower-case Crockford base32 characters (see ``new_record_id``)."""
    return len(value) == 26 and value.isascii() and value.isalnum() and value.islower()
