"""The password policy (NIST SP 800-63B): length, common passwords, context words, nothing else."""

from __future__ import annotations

import pytest

from authserver.domain.passwords import MAX_LENGTH, check_password
from authserver.errors import InvalidArgument
from tests.support.helpers import PASSWORD


def test_long_enough_password_is_accepted() -> None:
    assert check_password(PASSWORD, min_length=15) == PASSWORD


def test_short_password_is_refused_naming_the_minimum() -> None:
    with pytest.raises(InvalidArgument, match="at least 15 characters") as error:
        check_password("violet-kettle", min_length=15)
    assert error.value.field == "password"


def test_no_composition_rules_lower_case_words_are_fine() -> None:
    assert check_password("plum tractor river lamp", min_length=15)


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("passwordpassword", id="common"),
        pytest.param("PasswordPassword", id="common-any-case"),
        pytest.param("123456789012345", id="digits"),
        pytest.param("aaaaaaaaaaaaaaaaaaaa", id="one-character"),
        pytest.param("abababababababab", id="two-characters"),
    ],
)
def test_common_passwords_are_refused(password: str) -> None:
    with pytest.raises(InvalidArgument, match="too common"):
        check_password(password, min_length=15)


def test_password_containing_the_email_name_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="e-mail"):
        check_password("alice-in-wonderland", min_length=15, email="alice@example.com")


def test_overlong_password_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=f"at most {MAX_LENGTH}"):
        check_password("x" * 10 + PASSWORD * 20, min_length=15)


def test_equivalent_unicode_forms_are_one_password() -> None:
    composed = check_password("caf\u00e9-harbour-kettle", min_length=15)
    decomposed = check_password("cafe\u0301-harbour-kettle", min_length=15)
    assert composed == decomposed


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("Password1234567", id="common-word-and-digits"),
        pytest.param("123123123123123", id="repeated-digits"),
        pytest.param("abcabcabcabcabc", id="repeated-letters"),
        pytest.param("qwertyuiopasdfgh", id="keyboard-rows"),
        pytest.param("zyxwvutsrqponmlk", id="alphabet-backwards"),
        pytest.param("iloveyousomuch123", id="leaked-long-password"),
    ],
)
def test_passwords_of_the_security_review_are_refused(password: str) -> None:
    """L5: the 117-entry list let these pass."""
    with pytest.raises(InvalidArgument, match="too common"):
        check_password(password, min_length=15)


def test_the_shipped_list_holds_about_a_third_of_a_million_long_passwords() -> None:
    from authserver.domain.passwords import common_long

    listed = common_long()
    assert len(listed) > 300_000
    assert all(len(p) >= 15 for p in listed)


@pytest.mark.parametrize(
    ("password", "email"),
    [
        pytest.param("bob123456789012", "bob@example.com", id="short-local-part-and-digits"),
        pytest.param("kate2024!!!!!!!!", "kate@example.com", id="local-part-and-symbols"),
        pytest.param("acme-2024-12-01-!", "x@acme.example", id="domain-name-and-digits"),
        pytest.param("kate@example.com!!", "kate@example.com", id="address-and-symbols"),
    ],
)
def test_password_built_on_the_email_is_refused(password: str, email: str) -> None:
    with pytest.raises(InvalidArgument, match="e-mail"):
        check_password(password, min_length=15, email=email)


def test_password_that_merely_shares_letters_with_the_email_is_accepted() -> None:
    assert check_password("bobcat tractor river", min_length=15, email="bob@example.com")
