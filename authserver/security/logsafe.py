"""Making request input safe to put in a log line: one line, and never a secret.

Anything a caller sends may end up in a log (a path, a presented client_id). A
control character would let it forge lines of its own, including a fake audit
event; a secret or a token sent in the wrong place would be written in clear.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import unicodedata

# What a secret or a token looks like when it is presented where an identifier belongs (a
# client_id and a client_secret swapped, a token pasted into a path): our secret format
# (also percent-encoded), base64 of JSON (every JWT and our secrets' key), or a long run of
# base64url characters.
_SECRET_LIKE = re.compile(r"secret-token|eyJ|[A-Za-z0-9_-]{40}", re.IGNORECASE)
MAX_LOGGED_ID = 128
MAX_LOGGED_TEXT = 512
# Authlib logs secrets at debug level: issued tokens ("Issue token {'access_token': …}", the
# device-code and client-credentials grants) and the PKCE code verifier (its client).
AUTHLIB_LOGGER = "authlib"


def quiet_authlib() -> None:
    """Keep Authlib's loggers at INFO whatever ``log_level`` says: its debug lines hold
    tokens. Called where logging is configured and by every module that uses Authlib."""
    logging.getLogger(AUTHLIB_LOGGER).setLevel(logging.INFO)


def fingerprint(value: str) -> str:
    """``sha256:`` and the first 16 hex digits: enough to match repeats, nothing to reuse."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def presented(value: str | None) -> str | None:
    """A value a caller presented as an identifier, safe to log.

    Kept as it is unless it looks like a secret or a token (or is very long); then
    only its fingerprint is logged, which still lets an operator match repeated
    attempts without the log ever holding the secret.
    """
    if value is None or (len(value) <= MAX_LOGGED_ID and not _SECRET_LIKE.search(value)):
        return value
    return fingerprint(value)


def escaped(text: str) -> str:
    """``text`` on one line: control characters and line separators written as escapes."""
    if text.isprintable():
        return text[:MAX_LOGGED_TEXT]
    return "".join(
        ch
        if ch == " " or unicodedata.category(ch) not in ("Cc", "Zl", "Zp", "Cf")
        else ascii(ch)[1:-1]
        for ch in text[:MAX_LOGGED_TEXT]
    )


_stamp_second: int | None = None
_stamp = ""


def log_time(created: float | None = None) -> str:
    """The log format's ``asctime`` (local time, milliseconds) of ``created`` (default: now),
    its date part made once a second: ``time.strftime`` for every line cost more than the
    rest of the formatting."""
    global _stamp_second, _stamp
    if created is None:
        created = time.time()
    second = int(created)
    if second != _stamp_second:
        _stamp = time.strftime(logging.Formatter.default_time_format, time.localtime(second))
        _stamp_second = second
    return f"{_stamp},{int((created - second) * 1000):03d}"


def loggable_path(path: str) -> str:
    """A request path for the access log: escaped, with secret-looking segments fingerprinted."""
    # None of the pattern's alternatives can span a "/": one search over the whole path
    # finds whether any segment looks like a secret.
    if _SECRET_LIKE.search(path):
        path = "/".join(presented(segment) or "" for segment in path.split("/"))
    return escaped(path)


class Repeated:
    """One log line when an expected condition (an outage, say) starts, not one per occurrence.

    While it lasts, occurrences are counted and said at most every ``every`` seconds;
    ``ended`` says how many there were. No traceback: the condition is expected and
    its cause is in the line.
    """

    def __init__(self, logger: logging.Logger, what: str, *, every: float = 60.0) -> None:
        self.logger = logger
        self.what = what
        self.every = every
        self.count = 0
        self._said = 0.0
        self._unsaid = 0

    def happened(self, cause: object) -> None:
        self.count += 1
        now = time.monotonic()
        if self.count == 1:
            self.logger.warning("%s: %s", self.what, cause)
            self._said = now
        elif now - self._said >= self.every:
            self.logger.warning(
                "%s: %s (%d more times since the last line)", self.what, cause, self._unsaid + 1
            )
            self._said, self._unsaid = now, 0
        else:
            self._unsaid += 1

    def ended(self) -> None:
        if self.count:
            self.logger.info("%s: over, after %d times", self.what, self.count)
            self.count, self._unsaid = 0, 0
