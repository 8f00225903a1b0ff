"""Durations: CLI form (``90s``, ``15m``, ``12h``, ``30d``) and protobuf Duration (``"1.5s"``)."""

from __future__ import annotations

import re
from datetime import timedelta

from authserver.errors import InvalidArgument

_CLI = re.compile(r"([0-9]{1,9})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Protobuf JSON Duration: seconds with up to 9 fractional digits and a literal "s".
_PROTO = re.compile(r"(-?)([0-9]{1,12})(?:\.([0-9]{1,9}))?s")
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``/``15m``/``12h``/``30d``; positive and at most ten years."""
    match = _CLI.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise InvalidArgument(
            f"invalid duration {text!r}: use a number and s, m, h or d (e.g. 30d)"
        )
    value = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    return _bounded(value, text)


def parse_proto_duration(text: str) -> timedelta:
    """Parse a protobuf JSON Duration such as ``"2592000s"`` or ``"1.5s"``."""
    match = _PROTO.fullmatch(text) if isinstance(text, str) else None
    if not match or match.group(1):
        raise InvalidArgument(f'invalid duration {text!r}: expected a positive value like "3600s"')
    micros = int((match.group(3) or "0").ljust(9, "0")[:6])
    return _bounded(timedelta(seconds=int(match.group(2)), microseconds=micros), text)


def _bounded(value: timedelta, text: str) -> timedelta:
    if value <= timedelta(0):
        raise InvalidArgument(f"invalid duration {text!r}: must be positive")
    if value > MAX_DURATION:
        raise InvalidArgument(f"invalid duration {text!r}: at most 3650d")
    return value
