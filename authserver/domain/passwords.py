"""Passwords people choose: the policy of NIST SP 800-63B (revision 4, section 3.1.1.2).

A minimum length (config ``password_min_length``), a generous maximum, a check
against the most common passwords and against words of this context (the
person's e-mail, the service's name) — and no composition rules, no hints, no
forced periodic changes. Passwords are compared after Unicode NFKC
normalisation, so the same password typed on two keyboards is the same.
"""

from __future__ import annotations

import unicodedata
from importlib.resources import files

from authserver.errors import InvalidArgument

MAX_LENGTH = 256  # SP 800-63B: accept at least 64; argon2 makes length cheap to allow


def _common() -> frozenset[str]:
    text = files("authserver.domain").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


COMMON = _common()


def normalize_password(password: str) -> str:
    """NFKC, as SP 800-63B recommends, so equivalent input hashes alike."""
    return unicodedata.normalize("NFKC", password)


def check_password(password: str, *, min_length: int, email: str = "") -> str:
    """The normalised password, or ``InvalidArgument`` (field ``password``) saying why not."""
    if not isinstance(password, str):
        raise InvalidArgument("expected a string", field="password")
    normalized = normalize_password(password)
    if len(normalized) < min_length:
        raise InvalidArgument(f"use at least {min_length} characters", field="password")
    if len(normalized) > MAX_LENGTH:
        raise InvalidArgument(f"use at most {MAX_LENGTH} characters", field="password")
    if any(unicodedata.category(ch) == "Cc" for ch in normalized):
        raise InvalidArgument("control characters are not allowed", field="password")
    lowered = normalized.lower()
    if lowered in COMMON or len(set(lowered)) <= 2:
        raise InvalidArgument("this password is too common; choose another", field="password")
    local = email.lower().partition("@")[0]
    if email and (lowered == email.lower() or (len(local) >= 4 and local in lowered)):
        raise InvalidArgument("must not contain your e-mail address", field="password")
    if "authserver" in lowered and len(lowered.replace("authserver", "")) < min_length:
        raise InvalidArgument("must not be mostly the service's name", field="password")
    return normalized
