"""What an OpenID Connect provider says about a person, and when it selects a user.

Only an e-mail address the provider has verified (``email_verified`` is the JSON
``true``, not a string) selects a user, and only one in an allowed domain when
the provider has a list. The use case then finds (or creates) the user and
applies the user's own ``disabled`` flag.
"""

from __future__ import annotations

from collections.abc import Mapping

from authserver.domain.users import normalize_email
from authserver.errors import InvalidArgument, SignInRefused


def verified_email(claims: Mapping[str, object], *, allowed_domains: tuple[str, ...]) -> str:
    """The normalised e-mail address the claims vouch for, or ``SignInRefused``."""
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        raise SignInRefused(
            "no e-mail",
            "the provider did not say which e-mail address you have; "
            "ask your administrator to let it share your e-mail address",
        )
    if claims.get("email_verified") is not True:
        raise SignInRefused(
            "unverified e-mail",
            f"the provider has not verified the e-mail address {email}, "
            "so it cannot sign you in here",
        )
    try:
        normalized = normalize_email(email)
    except InvalidArgument:
        raise SignInRefused(
            "invalid e-mail", "the provider sent an invalid e-mail address"
        ) from None
    domain = normalized.rsplit("@", 1)[1]
    if allowed_domains and domain not in allowed_domains:
        raise SignInRefused(
            "domain not allowed", f"accounts of {domain} cannot sign in to this server"
        )
    return normalized
