"""JSON request bodies: strict parsing, camelCase/snake_case keys, typed field access.

Every problem is an ``InvalidArgument`` (code 3) whose message names the field.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from authserver.domain.credentials import UNSET, CredentialPatch
from authserver.domain.durations import parse_proto_duration
from authserver.errors import InvalidArgument
from authserver.store.ids import is_record_id

log = logging.getLogger("authserver.api")
#: How the API names the domain's fields in its messages.
FIELD_NAMES = {
    "display_name": "displayName",
    "allow_source_cidr": "allowSourceCidr",
    "scoped_roles": "scopedRoles",
    "expires_time": "expiresTime",
    "require_dpop": "requireDpop",
    "grace": "gracePeriod",
}
#: Writable fields of a personal client, in the API's names (``updateMask`` paths).
WRITABLE = ("displayName", "allowSourceCidr", "scopedRoles", "expiresTime", "requireDpop")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_Identified)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def fields(
    document: Mapping[str, Any], *, allowed: Iterable[str], where: str = ""
) -> dict[str, Any]:
    """The ``allowed`` keys, normalised to camelCase; a key given in both forms is refused.

    Other keys are ignored (logged at debug), as grpc-gateway's default
    unmarshaler does: SDKs add fields over time, and a server that refused
    them would break newer clients.
    """
    allowed_set = set(allowed)
    result: dict[str, Any] = {}
    for key, value in document.items():
        name = camel(key)
        if name not in allowed_set:
            log.debug("ignored unknown field %r", f"{where}{key}"[:80])
            continue
        if name in result:
            raise InvalidArgument(f"field {where}{key!r} given twice (camelCase and snake_case)")
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


def optional_bool(document: dict[str, Any], name: str) -> bool | None:
    value = document.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidArgument(f"{name}: expected true or false")
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
    """``pageSize`` (a number, or digits in a query string): absent or 0 means the default;
    at most 100."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if value is None or value == "":
        return DEFAULT_PAGE_SIZE
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument("pageSize: expected a non-negative integer")
    return min(value, MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE


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


def parse_update_mask(mask: Any, writable: tuple[str, ...] = WRITABLE) -> list[str]:
    """Field paths of an ``updateMask``: comma-separated (or a list), camelCase or snake_case."""
    raw = mask.split(",") if isinstance(mask, str) else mask
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise InvalidArgument("updateMask: expected a comma-separated string of field paths")
    paths: list[str] = []
    for path in (p.strip() for p in raw):
        if not path:
            continue
        name = camel(path)
        if name not in writable:
            raise InvalidArgument(
                f"updateMask: unknown or read-only field {path!r}; writable: {', '.join(writable)}"
            )
        if name not in paths:
            paths.append(name)
    if not paths:
        raise InvalidArgument("updateMask: name at least one field to update")
    return paths


def credential_patch(client: dict[str, Any], paths: list[str]) -> CredentialPatch:
    """The fields named by the mask, taken from ``client`` (camelCase keys); others UNSET.

    A masked field absent from ``client`` is cleared, as protobuf field masks do.
    Every field present is type-checked, masked or not.
    """
    values: dict[str, Any] = {
        "displayName": optional_string(client, "displayName"),
        "allowSourceCidr": string_list(client, "allowSourceCidr"),
        "scopedRoles": string_list(client, "scopedRoles"),
        "expiresTime": optional_timestamp(client, "expiresTime"),
        "requireDpop": bool(optional_bool(client, "requireDpop")),
    }
    masked = {name: value if name in paths else UNSET for name, value in values.items()}
    return CredentialPatch(
        display_name=masked["displayName"],
        allow_source_cidr=masked["allowSourceCidr"],
        scoped_roles=masked["scopedRoles"],
        expires_time=masked["expiresTime"],
        require_dpop=masked["requireDpop"],
    )


def credential_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The fields every new credential has (``NewCredential``'s, which ``NewTrust`` shares),
    from a create body in camelCase."""
    expires = optional_string(body, "expires")
    return {
        "display_name": optional_string(body, "displayName"),
        "allow_source_cidr": string_list(body, "allowSourceCidr"),
        "scoped_roles": string_list(body, "scopedRoles"),
        "expires_in": parse_proto_duration(expires) if expires else None,
        "require_dpop": bool(optional_bool(body, "requireDpop")),
    }


def update_request(
    document: Mapping[str, Any], key: str, writable: tuple[str, ...] = WRITABLE
) -> tuple[list[str], dict[str, Any]]:
    """An update body ``{key: {…}, "updateMask": …}``: the mask's paths and the object's
    ``writable`` fields."""
    body = fields(document, allowed=(key, "updateMask"))
    mask = body.get("updateMask")
    if mask is None:
        raise InvalidArgument("updateMask: required")
    paths = parse_update_mask(mask, writable)
    given = body.get(key) or {}
    if not isinstance(given, dict):
        raise InvalidArgument(f"{key}: expected an object")
    return paths, fields(given, allowed=writable, where=f"{key}.")


def listing(
    records: Sequence[T], more: bool, render: Callable[[T], dict[str, Any]]
) -> dict[str, Any]:
    """A list response: ``{"list": […], "nextPageToken"}``, the token empty on the last page."""
    next_token = encode_page_token(records[-1].id) if more and records else ""
    return {"list": [render(r) for r in records], "nextPageToken": next_token}
