"""Role names (RFC 6749 section 3.3 scope tokens) and effective roles."""

from __future__ import annotations

import re
from collections.abc import Iterable

from authserver.errors import InvalidArgument

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), RFC 6749 section 3.3.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")
MAX_ROLES = 64


def validate_role(name: str) -> str:
    """Return ``name`` if it is a valid role name, else raise InvalidArgument."""
    if not isinstance(name, str) or not _SCOPE_TOKEN.fullmatch(name):
        raise InvalidArgument(
            f"invalid role name {name!r}: 1 to 128 printable ASCII characters, "
            "no space, '\"' or '\\'"
        )
    return name


def normalize_roles(names: Iterable[str]) -> tuple[str, ...]:
    """Validate, de-duplicate and sort role names."""
    roles = sorted({validate_role(n) for n in names})
    if len(roles) > MAX_ROLES:
        raise InvalidArgument(f"at most {MAX_ROLES} roles")
    return tuple(roles)


def effective_roles(owner_roles: Iterable[str], scoped_roles: Iterable[str]) -> frozenset[str]:
    """``owner.roles ∩ scopedRoles``, or ``owner.roles`` when the credential is unreduced."""
    owner = frozenset(owner_roles)
    scoped = frozenset(scoped_roles)
    return owner & scoped if scoped else owner


def parse_scope(scope: str) -> frozenset[str] | None:
    """Split an RFC 6749 ``scope`` parameter; None if a token is not a valid scope token."""
    tokens = scope.split(" ")
    if any(not _SCOPE_TOKEN.fullmatch(t) for t in tokens):
        return None
    return frozenset(tokens)
