"""User fields: e-mail and display name validation."""

from __future__ import annotations

import re

from authserver.errors import InvalidArgument

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


def normalize_email(email: str) -> str:
    """Lower-case, trimmed; must look like ``local@domain``."""
    value = email.strip().lower() if isinstance(email, str) else ""
    if not _EMAIL.fullmatch(value) or "." not in value.rsplit("@", 1)[1]:
        raise InvalidArgument(f"invalid e-mail address {email!r}")
    return value
