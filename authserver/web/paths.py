"""Path parameters the front doors share."""

from __future__ import annotations

from starlette.requests import Request

from authserver.errors import NotFound
from authserver.store.ids import is_record_id


def record_id(request: Request, what: str) -> str:
    """The ``{id}`` path parameter: only a record id names a ``what`` (a personal client, a
    federation trust, a user); anything else is ``NotFound`` (``no <what> '<id>'``)."""
    ref: str = request.path_params["id"]
    if not is_record_id(ref):
        raise NotFound(f"no {what} {ref!r}")
    return ref
