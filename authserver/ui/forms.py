"""Reading the pages' POSTed forms: UTF-8 ``application/x-www-form-urlencoded``, bounded."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qsl

from starlette.requests import Request

from authserver.errors import InvalidArgument
from authserver.web.body import read_body

MAX_FORM_BYTES = 65536


class Form:
    """A parsed form: the first value of a field, or all of them (checkboxes)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        return next((value for key, value in self.pairs if key == name), default)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def lines(self, name: str) -> list[str]:
        """The non-blank lines of a text area, stripped (one network a line)."""
        return [line.strip() for line in self.get(name).splitlines() if line.strip()]


async def read_form(request: Request) -> Form:
    """The form, or ``InvalidArgument`` for another content type, a huge body or bad UTF-8."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise InvalidArgument("expected a form (application/x-www-form-urlencoded)")
    body = await read_body(request, limit=MAX_FORM_BYTES)
    if body is None:
        raise InvalidArgument("the form is too large")
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument("the form is not valid UTF-8 form encoding") from None
    return Form(pairs)


def filter_day(text: str, label: str, problems: list[str], *, end: bool = False) -> datetime | None:
    """A list filter's YYYY-MM-DD day (UTC): its start, or with ``end`` the start of the
    next day; None when empty, or when it is no date (then ``label`` is named in
    ``problems`` and the filter is ignored)."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        problems.append(f"{label}: choose a date (YYYY-MM-DD)")
        return None
    return datetime.combine(day + timedelta(days=1 if end else 0), time(), tzinfo=UTC)
