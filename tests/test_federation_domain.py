"""The trust's own rules, pure: the CEL condition (checked when saved, true only for ``true``),
the issuer URL, the audience, and the ``/wfe`` client id."""

from __future__ import annotations

import re

import pytest

from authserver.domain.credentials import new_client_id
from authserver.domain.federation import (
    PRESETS,
    check_audience,
    check_condition,
    check_issuer,
    compiled,
    discovery_url,
    evaluate,
)
from authserver.errors import InvalidArgument

CLAIMS = {"repository": "acme/deploy", "ref": "refs/heads/main", "run_attempt": 2}


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        pytest.param('claims.repository == "acme/deploy"', True, id="equal"),
        pytest.param('claims.ref.startsWith("refs/tags/")', False, id="false"),
        pytest.param('claims.environment == "prod"', False, id="missing-claim"),
        pytest.param('has(claims.environment) && claims.environment == "prod"', False, id="has"),
        pytest.param("claims.ref", False, id="not-a-bool"),
        pytest.param("claims.run_attempt > 1", True, id="number"),
        pytest.param('claims.repository in ["acme/deploy", "acme/web"]', True, id="in-list"),
        pytest.param('claims.ref.matches("^refs/heads/(main|release/.*)$")', True, id="regex"),
    ],
)
def test_condition_is_true_only_for_true(condition: str, holds: bool) -> None:
    assert compiled(check_condition(condition)).holds(CLAIMS) is holds


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        pytest.param("", "required", id="empty"),
        pytest.param("   ", "required", id="blank"),
        pytest.param("claims.ref ==", "cannot parse", id="syntax"),
        pytest.param('ref == "main"', "unknown variable ref", id="other-variable"),
        pytest.param("x" * 1025, "at most 1024 characters", id="too-long"),
    ],
)
def test_invalid_condition_is_refused_naming_the_problem(condition: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_condition(condition)
    assert info.value.field == "condition"
    assert info.value.message.startswith(message), info.value.message


def test_a_condition_of_1024_characters_is_accepted() -> None:
    condition = 'claims.ref == "' + "x" * (1024 - 16) + '"'
    assert len(condition) == 1024 and check_condition(condition) == condition


def test_evaluate_checks_the_condition_first() -> None:
    with pytest.raises(InvalidArgument):
        evaluate("claims.ref ==", CLAIMS)


@pytest.mark.parametrize(
    "url",
    ["https://token.actions.githubusercontent.com", "https://gitlab.com", "http://127.0.0.1:9000"],
)
def test_issuers_that_are_accepted(url: str) -> None:
    assert check_issuer(url) == url


@pytest.mark.parametrize(
    "url",
    ["http://ci.example.com", "ftp://ci.example.com", "https://ci.example.com/?x=1", "", "ci"],
)
def test_issuers_that_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_issuer(url)
    assert info.value.field == "issuer"


def test_audience_defaults_to_the_given_default() -> None:
    assert check_audience(None, "https://auth.example.com") == "https://auth.example.com"
    assert check_audience(" ", "https://auth.example.com") == "https://auth.example.com"
    assert check_audience("sts.amazonaws.com", "x") == "sts.amazonaws.com"


def test_discovery_url_follows_openid_connect_discovery() -> None:
    assert (
        discovery_url("https://gitlab.com/")
        == "https://gitlab.com/.well-known/openid-configuration"
    )


def test_trust_client_ids_end_in_wfe() -> None:
    assert re.fullmatch(
        r"[a-z]+-[a-z]+-\d{5}@auth\.example\.com/wfe", new_client_id("auth.example.com", "wfe")
    )


def test_presets_name_the_claims_the_issue_lists() -> None:
    github, gitlab = PRESETS
    assert github.issuer == "https://token.actions.githubusercontent.com"
    assert [c for c, _ in github.claims] == [
        "repository", "ref", "environment", "workflow", "job_workflow_ref"
    ]  # fmt: skip
    assert gitlab.issuer == "https://gitlab.com"
    assert [c for c, _ in gitlab.claims] == ["project_path", "ref", "ref_protected", "environment"]
    for preset in PRESETS:
        check_condition(preset.example)
