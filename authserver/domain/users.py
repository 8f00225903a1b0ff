"""User fields: e-mail and display name validation; who may see which user."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from authserver.domain.credentials import Caller, is_admin
from authserver.errors import InvalidArgument

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
# Controls, format characters (bidi overrides, zero-width joiners), surrogates, private use,
# unassigned, line and paragraph separators: never part of an address a person can read.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def normalize_email(email: str) -> str:
    """Lower-case, trimmed; must look like ``local@domain``.

    Refused as well: an address with control or format characters (``users list`` would
    print them raw), and one that NFKC normalisation or case folding would change
    (``\\u212aate@…`` with a Kelvin sign is not ``kate@…``, though ``lower()`` makes it so):
    two spellings must never name one account, nor one look like another.
    """
    raw = email.strip() if isinstance(email, str) else ""
    if any(unicodedata.category(ch) in _HIDDEN for ch in raw):
        raise InvalidArgument(f"invalid e-mail address {ascii(email)}: it has invisible characters")
    value = raw.lower()
    if (
        unicodedata.normalize("NFKC", raw) != raw
        or unicodedata.normalize("NFKC", value) != value
        or raw.casefold() != value
    ):
        raise InvalidArgument(
            f"invalid e-mail address {ascii(email)}: it has characters that stand for others "
            "(compatibility forms or special case mappings)"
        )
    if not _EMAIL.fullmatch(value) or "." not in value.rsplit("@", 1)[1]:
        raise InvalidArgument(f"invalid e-mail address {email!r}")
    return value


def may_see_user(caller: Caller, user_id: str, *, admin_role: str) -> bool:
    """A caller sees itself; the admin role and the operator see everyone."""
    return caller.is_operator or caller.user_id == user_id or is_admin(caller, admin_role)


def visible_ids(
    caller: Caller, ids: Sequence[str] | None, *, admin_role: str
) -> Sequence[str] | None:
    """The user ids a listing may show: ``ids`` (None = everyone) narrowed to what the
    caller may see."""
    if caller.is_operator or is_admin(caller, admin_role):
        return ids
    own = [caller.user_id] if caller.user_id is not None else []
    return own if ids is None else [i for i in own if i in ids]
