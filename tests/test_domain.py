"""Domain rules in isolation: networks, durations, roles, credentials."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from authserver.domain import credentials, durations, network, roles, secrets
from authserver.domain.credentials import Caller
from authserver.domain.users import normalize_email
from authserver.errors import InvalidArgument, PermissionDenied
from tests.support.helpers import auth_state

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TRUSTED = [ipaddress.ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("10.0.0.0/8", "10.0.0.0/8", id="ipv4"),
        pytest.param("192.0.2.1", "192.0.2.1/32", id="bare-ipv4"),
        pytest.param("2001:db8::/32", "2001:db8::/32", id="ipv6"),
        pytest.param("2001:db8::1", "2001:db8::1/128", id="bare-ipv6"),
        pytest.param("::ffff:192.0.2.0/120", "192.0.2.0/24", id="mapped"),
    ],
)
def test_cidrs_are_normalised(text: str, expected: str) -> None:
    assert network.normalize_cidrs([text]) == (expected,)


@pytest.mark.parametrize(
    "text",
    ["10.0.0.1/8", "300.1.1.1", "10.0.0.0/33", "", " 10.0.0.0/8", "example.com", "1.2.3.4/-1"],
)
def test_malformed_cidr_is_invalid_argument(text: str) -> None:
    with pytest.raises(InvalidArgument):
        network.normalize_cidrs([text])


def test_more_than_32_cidrs_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="at most 32"):
        network.normalize_cidrs([f"10.0.{i}.0/24" for i in range(33)])


def test_source_is_peer_without_trusted_proxies() -> None:
    assert network.source_address("192.0.2.1", ["203.0.113.9"], []) == ipaddress.ip_address(
        "192.0.2.1"
    )


def test_source_walks_forwarded_for_from_the_right() -> None:
    source = network.source_address("10.0.0.1", ["198.51.100.1, 203.0.113.9", "10.2.2.2"], TRUSTED)
    assert source == ipaddress.ip_address("203.0.113.9")


def test_non_ip_peer_has_no_source() -> None:
    assert network.source_address("testclient", [], TRUSTED) is None


def test_unknown_source_fails_a_cidr_lock() -> None:
    assert not network.address_allowed(None, [ipaddress.ip_network("0.0.0.0/0")])


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000)]
)
def test_cli_durations(text: str, seconds: int) -> None:
    assert durations.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0s", "10", "1w", "-5m", "1.5h", "99999999999d"])
def test_bad_cli_durations(text: str) -> None:
    with pytest.raises(InvalidArgument):
        durations.parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3600s", timedelta(hours=1)),
        ("1.5s", timedelta(seconds=1.5)),
        ("0.000001s", timedelta(microseconds=1)),
    ],
)
def test_protobuf_durations(text: str, expected: timedelta) -> None:
    assert durations.parse_proto_duration(text) == expected


@pytest.mark.parametrize("text", ["3600", "-1s", "1.5 s", "1e3s", "0s"])
def test_bad_protobuf_durations(text: str) -> None:
    with pytest.raises(InvalidArgument):
        durations.parse_proto_duration(text)


@pytest.mark.parametrize("name", ["system:owner", "a", "x" * 128, "!#[]~"])
def test_valid_role_names(name: str) -> None:
    assert roles.validate_role(name) == name


@pytest.mark.parametrize("name", ["", "has space", 'quo"te', "back\\slash", "x" * 129, "é"])
def test_invalid_role_names(name: str) -> None:
    with pytest.raises(InvalidArgument):
        roles.validate_role(name)


def test_effective_roles_intersect_owner_and_scoped() -> None:
    assert roles.effective_roles({"a", "b"}, {"b", "c"}) == {"b"}


def test_unreduced_credential_has_all_owner_roles() -> None:
    assert roles.effective_roles({"a", "b"}, set()) == {"a", "b"}


def test_client_id_format() -> None:
    client_id = credentials.new_client_id("auth.example.com")
    assert re.fullmatch(r"[a-z]+-[a-z]+-[0-9]{5}@auth\.example\.com/pcc", client_id)


def test_secret_round_trips_to_its_private_jwk() -> None:
    new = secrets.new_secret("auth.example.com")
    assert new.secret.startswith("secret-token:auth.example.com:v1:")
    jwk = secrets.parse_secret(new.secret)
    assert jwk is not None and jwk["x"] == new.public_jwk["x"] and "d" in jwk
    assert "d" not in new.public_jwk


@pytest.mark.parametrize("secret", ["", "secret-token:h:v1:", "secret-token:h:v1:!!!", "plain"])
def test_foreign_secret_does_not_parse(secret: str) -> None:
    assert secrets.parse_secret(secret) is None


def reduced(*roles_: str) -> Caller:
    return Caller(user_id="u", effective_roles=frozenset(roles_), reduced=True)


def check(caller: Caller, scoped: tuple[str, ...]) -> credentials.CredentialSpec:
    return credentials.check_new_credential(
        caller=caller,
        owner_roles={"a", "b"},
        new=credentials.NewCredential(display_name="x", scoped_roles=scoped),
        now=NOW,
    )


def test_reduced_caller_cannot_create_unreduced_credential() -> None:
    with pytest.raises(PermissionDenied):
        check(reduced("a"), ())


def test_reduced_caller_cannot_exceed_its_roles() -> None:
    with pytest.raises(PermissionDenied):
        check(reduced("a"), ("a", "b"))


def test_reduced_caller_may_create_within_its_roles() -> None:
    assert check(reduced("a"), ("a",)).scoped_roles == ("a",)


def test_unreduced_caller_may_create_unreduced_credential() -> None:
    caller = Caller(user_id="u", effective_roles=frozenset({"a", "b"}), reduced=False)
    assert check(caller, ()).scoped_roles == ()


def test_display_name_is_bounded() -> None:
    with pytest.raises(InvalidArgument):
        credentials.validate_display_name("x" * 201)


def test_display_name_rejects_control_characters() -> None:
    with pytest.raises(InvalidArgument):
        credentials.validate_display_name("a\nb")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"deleted": True}, "credential deleted", id="deleted"),
        pytest.param({"expires_time": NOW}, "credential expired", id="expired-at-instant"),
        pytest.param({"owner_disabled": True}, "owner disabled", id="disabled"),
    ],
)
def test_refusal_reasons(changes: dict[str, Any], reason: str) -> None:
    assert credentials.refusal_reason(auth_state(**changes), now=NOW, source=None) == reason


def test_live_credential_has_no_refusal() -> None:
    future = NOW + timedelta(seconds=1)
    assert credentials.refusal_reason(auth_state(expires_time=future), now=NOW, source=None) is None


def test_token_expiry_is_capped_by_credential_expiry() -> None:
    expires = NOW + timedelta(seconds=30)
    assert credentials.token_expiry(auth_state(expires_time=expires), now=NOW, ttl=600) == expires


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("\u212aate@example.com", id="kelvin-sign"),
        pytest.param("\uff4bate@example.com", id="fullwidth"),
        pytest.param("stra\u00dfe@example.com", id="sharp-s-folds-to-ss"),
        pytest.param("esc\x1b[31mred@example.com", id="escape-sequence"),
        pytest.param("a\u200b@example.com", id="zero-width-space"),
        pytest.param("evil\u202e@example.com", id="bidi-override"),
        pytest.param("a@exa\u0000mple.com", id="nul"),
    ],
)
def test_email_that_is_not_what_it_shows_is_refused(email: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid e-mail address"):
        normalize_email(email)


def test_email_in_another_script_that_is_stable_is_kept() -> None:
    assert normalize_email(" Jos\u00e9@Example.com") == "jos\u00e9@example.com"
