"""Standard Webhooks signatures: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The signature is ``v1,`` and the base64 HMAC-SHA256, under the bytes behind the
receiver's ``whsec_`` secret, of ``"<id>.<timestamp>.<body>"``; any Standard
Webhooks library verifies it (https://www.standardwebhooks.com).
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def signed_headers(*, key: bytes, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three headers of one delivery attempt (the timestamp is the attempt's)."""
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }
