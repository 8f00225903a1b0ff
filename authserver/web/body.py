"""Reading request bodies: without trusting the declared size, and JSON strictly."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from authserver.errors import InvalidArgument

MAX_JSON_BYTES = 65536


async def read_body(request: Request, *, limit: int) -> bytes | None:
    """The whole body, or None as soon as it grows past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request, *, limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is ``{}``).

    The Content-Type is not checked (``curl -d`` sends a form type): the body
    must parse as JSON whatever it claims. Bearer authentication makes this
    safe from cross-site form posts.
    """
    raw = await read_body(request, limit=limit)
    if raw is None:
        raise InvalidArgument(f"request body larger than {limit} bytes")
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"malformed JSON body: {exc}") from None
    except RecursionError:
        raise InvalidArgument("malformed JSON body: nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidArgument("the JSON body must be an object")
    return document


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result
