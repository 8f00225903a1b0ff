"""Sign-in through an OpenID Connect provider, after the protocol: pending sign-ins and who the
provider's claims let in (both databases). The protocol itself: ``test_oidc.py``."""

from __future__ import annotations

import ipaddress
import json
from datetime import timedelta
from typing import Any

import pytest

from authserver.config import Settings
from authserver.domain.identity import verified_email
from authserver.errors import SignInRefused, SignInThrottled
from authserver.records import UserRecord
from authserver.security.argon2 import PasswordHasher, SecretHasher
from authserver.sso.providers import OidcProvider
from authserver.store import Store
from authserver.usecases.people import PeopleService
from authserver.usecases.provider_sign_in import (
    STARTS_PER_MINUTE,
    PendingSignIn,
    ProviderSignInService,
)
from authserver.usecases.users import UserService
from tests.support.helpers import now

SOURCE = ipaddress.ip_address("203.0.113.9")
CORP = OidcProvider(name="corp", issuer="https://sso.example.com", client_id="c", client_secret="s")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        pytest.param({"email_verified": True}, "no e-mail", id="no-email"),
        pytest.param({"email": "a@example.com"}, "unverified e-mail", id="no-email-verified"),
        pytest.param(
            {"email": "a@example.com", "email_verified": False}, "unverified e-mail", id="false"
        ),
        pytest.param(
            {"email": "a@example.com", "email_verified": "true"},
            "unverified e-mail",
            id="string-true",
        ),
        pytest.param(
            {"email": "a@example.com", "email_verified": 1}, "unverified e-mail", id="number-one"
        ),
        pytest.param(
            {"email": "not-an-address", "email_verified": True}, "invalid e-mail", id="bad"
        ),
        pytest.param(
            {"email": "a@sub.example.com", "email_verified": True},
            "domain not allowed",
            id="subdomain",
        ),
    ],
)
def test_only_a_verified_email_in_an_allowed_domain_selects_a_user(
    claims: dict[str, Any], reason: str
) -> None:
    with pytest.raises(SignInRefused) as refused:
        verified_email(claims, allowed_domains=("example.com",))
    assert refused.value.reason == reason


def test_verified_email_is_normalised_like_users_emails() -> None:
    claims = {"email": " Alice@Example.COM ", "email_verified": True}
    assert verified_email(claims, allowed_domains=("example.com",)) == "alice@example.com"
    assert verified_email(claims, allowed_domains=()) == "alice@example.com"


@pytest.fixture
def people(store: Store, settings: Settings, hasher: SecretHasher) -> PeopleService:
    return PeopleService(store, PasswordHasher(settings), settings)


@pytest.fixture
def service(store: Store, people: PeopleService) -> ProviderSignInService:
    return ProviderSignInService(store, people, UserService(store))


def pending(provider: str = "corp") -> PendingSignIn:
    return PendingSignIn(
        provider=provider,
        redirect_uri="http://127.0.0.1:8000/ui/login/oidc/corp/callback",
        next_path="/ui/personal-clients/new",
        state="state-1",
        nonce="nonce-1",
        code_verifier="verifier-1",
    )


def test_pending_sign_in_is_found_once_by_its_cookie(service: ProviderSignInService) -> None:
    token = service.begin(pending=pending(), source=SOURCE, now=now())
    assert token.startswith("psi_")
    assert service.resume(token=token, now=now()) == pending()
    assert service.resume(token=token, now=now()) is None


def test_pending_sign_in_expires_after_ten_minutes(service: ProviderSignInService) -> None:
    token = service.begin(pending=pending(), source=SOURCE, now=now() - timedelta(minutes=11))
    assert service.resume(token=token, now=now()) is None


@pytest.mark.parametrize("token", ["", "psi_unknown", "ses_" + "x" * 43, "psi_" + "x" * 200])
def test_unknown_cookie_finds_no_pending_sign_in(
    service: ProviderSignInService, token: str
) -> None:
    service.begin(pending=pending(), source=SOURCE, now=now())
    assert service.resume(token=token, now=now()) is None


def test_pending_sign_in_keeps_only_a_hash_of_its_cookie(
    service: ProviderSignInService, store: Store
) -> None:
    token = service.begin(pending=pending(), source=SOURCE, now=now())
    with store.database.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id_hash FROM pending_sign_ins").all()
    assert len(rows) == 1 and token not in rows[0][0]


def test_expired_pending_sign_ins_are_purged(service: ProviderSignInService) -> None:
    service.begin(pending=pending(), source=SOURCE, now=now() - timedelta(minutes=11))
    kept = service.begin(pending=pending(), source=SOURCE, now=now())
    assert service.purge(now=now()) == 1
    assert service.resume(token=kept, now=now()) is not None


def test_starts_from_one_source_are_throttled(service: ProviderSignInService) -> None:
    for _ in range(STARTS_PER_MINUTE):
        service.begin(pending=pending(), source=SOURCE, now=now())
    with pytest.raises(SignInThrottled):
        service.begin(pending=pending(), source=SOURCE, now=now())
    other = ipaddress.ip_address("198.51.100.1")
    assert service.begin(pending=pending(), source=other, now=now())


VERIFIED = {"sub": "u-1", "email": "Alice@Example.com", "email_verified": True, "name": "Alice"}


def audit_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.audit"]


def test_verified_email_of_a_known_user_starts_a_session(
    service: ProviderSignInService,
    store: Store,
    people: PeopleService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice = UserService(store).create(
        email="alice@example.com", display_name="", role_names=["deploy"], now=now()
    )
    started = service.complete(provider=CORP, claims=VERIFIED, source=SOURCE, now=now())
    signed_in = people.current(session_id=started.session_id, now=now())
    assert signed_in is not None
    assert (signed_in.user.id, signed_in.session.method) == (alice.id, "oidc:corp")
    # The operator's user_created first (UserService audits it), then the sign-in.
    assert [e["event"] for e in audit_events(caplog)] == [
        "user_created",
        "provider_linked",
        "signed_in",
    ]


def test_unknown_email_is_refused_and_no_user_created(
    service: ProviderSignInService, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(SignInRefused, match="no account for alice@example.com"):
        service.complete(provider=CORP, claims=VERIFIED, source=SOURCE, now=now())
    assert store.users.all() == []
    (event,) = audit_events(caplog)
    assert (event["event"], event["reason"], event["subject"]) == (
        "sign_in_failed",
        "unknown e-mail",
        "u-1",
    )


def test_auto_create_users_creates_the_user_with_the_default_roles(
    service: ProviderSignInService, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    corp = OidcProvider(
        name="corp",
        issuer="https://sso.example.com",
        client_id="c",
        client_secret="s",
        auto_create_users=True,
        default_roles=("billing:read",),
    )
    service.complete(provider=corp, claims=VERIFIED, source=SOURCE, now=now())
    (user,) = store.users.all()
    assert (user.email, user.display_name, user.roles) == (
        "alice@example.com",
        "Alice",
        ("billing:read",),
    )
    assert [e["event"] for e in audit_events(caplog)] == [
        "user_created",
        "provider_linked",
        "signed_in",
    ]
    # The second sign-in finds the user made at the first.
    service.complete(provider=corp, claims=VERIFIED, source=SOURCE, now=now())
    assert len(store.users.all()) == 1


def test_disabled_user_is_refused_even_when_users_are_created(
    service: ProviderSignInService, store: Store
) -> None:
    users = UserService(store)
    alice = users.create(email="alice@example.com", display_name="", role_names=[], now=now())
    users.update(ref=alice.id, role_names=None, disabled=True, now=now())
    corp = OidcProvider(
        name="corp",
        issuer="https://sso.example.com",
        client_id="c",
        client_secret="s",
        auto_create_users=True,
    )
    with pytest.raises(SignInRefused) as refused:
        service.complete(provider=corp, claims=VERIFIED, source=SOURCE, now=now())
    assert refused.value.reason == "user disabled"


def test_provider_email_with_a_kelvin_sign_does_not_sign_in_as_the_ascii_address(
    service: ProviderSignInService, store: Store
) -> None:
    """L3: ``\\u212aate@…`` lower-cases to ``kate@…``; it must not select that user."""
    UserService(store).create(email="kate@example.com", display_name="", role_names=[], now=now())
    claims = {"sub": "u-9", "email": "\u212aate@example.com", "email_verified": True}
    with pytest.raises(SignInRefused) as refused:
        service.complete(provider=CORP, claims=claims, source=SOURCE, now=now())
    assert refused.value.reason == "invalid e-mail"


def test_auto_creation_refuses_an_email_with_control_characters(
    service: ProviderSignInService, store: Store
) -> None:
    provider = OidcProvider(
        name="corp",
        issuer="https://sso.example.com",
        client_id="c",
        client_secret="s",
        auto_create_users=True,
    )
    claims = {"sub": "u-9", "email": "esc\x1b[31mred@example.com", "email_verified": True}
    with pytest.raises(SignInRefused):
        service.complete(provider=provider, claims=claims, source=SOURCE, now=now())
    assert store.users.all() == []


OTHER_IDP = OidcProvider(
    name="other", issuer="https://idp.example.net", client_id="c", client_secret="s"
)
CORP_FOR_EXAMPLE = OidcProvider(
    name="corp",
    issuer="https://sso.example.com",
    client_id="c",
    client_secret="s",
    allowed_domains=("example.com",),
)


def _alice(store: Store, roles: tuple[str, ...] = ("deploy",)) -> UserRecord:
    return UserService(store).create(
        email="alice@example.com", display_name="", role_names=roles, now=now()
    )


def test_first_sign_in_binds_the_user_to_the_providers_subject(
    service: ProviderSignInService, store: Store
) -> None:
    alice = _alice(store)
    service.complete(provider=CORP, claims=VERIFIED, source=SOURCE, now=now())
    assert store.provider_links.of_user(user_id=alice.id) == [("https://sso.example.com", "u-1")]


def test_another_subject_with_the_same_email_is_refused(
    service: ProviderSignInService, store: Store
) -> None:
    """M2: once bound, another account naming the same address does not sign in."""
    _alice(store)
    service.complete(provider=CORP, claims=VERIFIED, source=SOURCE, now=now())
    with pytest.raises(SignInRefused) as refused:
        service.complete(
            provider=CORP, claims={**VERIFIED, "sub": "attacker"}, source=SOURCE, now=now()
        )
    assert refused.value.reason == "another provider account"


def test_another_provider_naming_a_bound_users_email_is_refused(
    service: ProviderSignInService, store: Store
) -> None:
    _alice(store)
    service.complete(provider=CORP, claims=VERIFIED, source=SOURCE, now=now())
    with pytest.raises(SignInRefused):
        service.complete(provider=OTHER_IDP, claims=VERIFIED, source=SOURCE, now=now())


def test_provider_without_allowed_domains_cannot_sign_in_an_admin(
    service: ProviderSignInService, store: Store
) -> None:
    alice = _alice(store, roles=("system:owner",))
    with pytest.raises(SignInRefused) as refused:
        service.complete(provider=CORP, claims=VERIFIED, source=SOURCE, now=now())
    assert refused.value.reason == "provider not trusted for this account"
    assert store.provider_links.of_user(user_id=alice.id) == []


def test_provider_without_allowed_domains_cannot_sign_in_a_password_user(
    service: ProviderSignInService, store: Store, people: PeopleService
) -> None:
    alice = _alice(store)
    people.set_password(user_ref=alice.id, password="plum tractor river lamp", now=now())
    with pytest.raises(SignInRefused) as refused:
        service.complete(provider=CORP, claims=VERIFIED, source=SOURCE, now=now())
    assert refused.value.reason == "provider not trusted for this account"


def test_provider_listing_the_domain_signs_in_an_admin(
    service: ProviderSignInService, store: Store
) -> None:
    _alice(store, roles=("system:owner",))
    assert service.complete(provider=CORP_FOR_EXAMPLE, claims=VERIFIED, source=SOURCE, now=now())


def test_operator_link_lets_a_second_provider_account_sign_in(
    service: ProviderSignInService, store: Store
) -> None:
    alice = _alice(store)
    service.complete(provider=CORP, claims=VERIFIED, source=SOURCE, now=now())
    service.link(user_ref=alice.email, provider=OTHER_IDP, subject="x-7", now=now())
    claims = {**VERIFIED, "sub": "x-7"}
    assert service.complete(provider=OTHER_IDP, claims=claims, source=SOURCE, now=now())
    service.unlink(user_ref=alice.email, provider=OTHER_IDP, subject="x-7")
    with pytest.raises(SignInRefused):
        service.complete(provider=OTHER_IDP, claims=claims, source=SOURCE, now=now())


def test_google_account_outside_the_hosted_domain_is_refused() -> None:
    claims = {"sub": "g-1", "email": "alice@example.com", "email_verified": True}
    with pytest.raises(SignInRefused) as refused:
        verified_email(
            claims, allowed_domains=("example.com",), issuer="https://accounts.google.com"
        )
    assert refused.value.reason == "hosted domain not allowed"
    hosted = {**claims, "hd": "example.com"}
    assert verified_email(
        hosted, allowed_domains=("example.com",), issuer="https://accounts.google.com"
    )


def test_hd_claim_naming_another_domain_is_refused() -> None:
    claims = {"email": "alice@example.com", "email_verified": True, "hd": "gmail.com"}
    with pytest.raises(SignInRefused):
        verified_email(claims, allowed_domains=("example.com",), issuer="https://sso.example.com")
