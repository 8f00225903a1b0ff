"""What an OpenID Connect provider says about a person, and when it selects a user.

Only an e-mail address the provider has verified (``email_verified`` is the JSON
``true``, not a string) selects a user, and only one in an allowed domain when
the provider has a list. The use case then finds (or creates) the user and
applies the user's own ``disabled`` flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from authserver.domain.users import normalize_email
from authserver.errors import InvalidArgument, SignInRefused

GOOGLE_ISSUER = "https://accounts.google.com"


def verified_email(
    claims: Mapping[str, object], *, allowed_domains: tuple[str, ...], issuer: str = ""
) -> str:
    """The normalised e-mail address the claims vouch for, or ``SignInRefused``.

    With ``allowed_domains``, Google's ``hd`` claim (the Workspace domain of the account)
    must be one of them too: Google requires it, and any provider that sends it is held
    to it — a consumer account may carry an address of the company's domain.
    """
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
    hosted = claims.get("hd")
    if allowed_domains and (
        (hosted is not None and hosted not in allowed_domains)
        or (hosted is None and issuer.rstrip("/") == GOOGLE_ISSUER)
    ):
        raise SignInRefused(
            "hosted domain not allowed",
            "this account is not one of your organisation's accounts at the provider",
        )
    return normalized


@dataclass(frozen=True)
class Binding:
    """What is known of a user and a provider account (issuer, subject) signing in as them."""

    user_id: str
    issuer: str
    subject: str
    linked_user: str | None  # whom this provider account is linked to already
    links: tuple[tuple[str, str], ...]  # the user's linked provider accounts
    has_password: bool
    is_admin: bool
    domain: str  # of the user's e-mail address


def check_binding(binding: Binding, *, allowed_domains: tuple[str, ...]) -> bool:
    """May this provider account sign in as this user? True when it is to be linked now.

    A user is bound to the provider account that first signs them in; another one (of
    that provider or another) needs an operator's ``users link-provider``. A first
    sign-in through a provider of a user who has a password here, or holds the admin
    role, needs the provider to vouch for the domain (``allowed_domains``): otherwise
    any configured provider could take over those accounts by naming their e-mail.
    """
    pair = (binding.issuer, binding.subject)
    if binding.linked_user is not None and binding.linked_user != binding.user_id:
        raise SignInRefused(
            "linked to another user",
            "this account at the provider signs in another user on this server",
        )
    if pair in binding.links:
        return False
    if binding.links:
        raise SignInRefused(
            "another provider account",
            "your account on this server signs in with another account at a provider; "
            "ask your administrator to link this one",
        )
    if (binding.has_password or binding.is_admin) and binding.domain not in allowed_domains:
        raise SignInRefused(
            "provider not trusted for this account",
            "this provider cannot sign in your account; sign in with your password, or ask "
            "your administrator to link your account at the provider",
        )
    return True
