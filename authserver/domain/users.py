"""User fields: e-mail and display name validation; who may see which user."""

from __future__ import annotations

import re
from collections.abc import Sequence

from authserver.domain.credentials import Caller, is_admin
from authserver.errors import InvalidArgument

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


def normalize_email(email: str) -> str:
    """Lower-case, trimmed; must look like ``local@domain``."""
    value = email.strip().lower() if isinstance(email, str) else ""
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
