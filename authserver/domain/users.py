"""User fields: e-mail and display name validation."""

from __future__ import annotations

import re
import unicodedata

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
