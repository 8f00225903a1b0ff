"""Federation trusts (SPEC section 12): their fields, their condition, and the CI presets.

A trust is a credential of its owner without a secret: a CI job's OpenID Connect
token from ``issuer``, for ``audience``, whose claims satisfy ``condition`` (a CEL
expression over ``claims``), is exchanged for an access token of the owner (RFC 8693).
The rules of personal clients (ownership, no escalation, networks, expiry, the
lifetime policy) apply to trusts unchanged; this module adds what is their own.

CEL is Google's Common Expression Language, through ``common-expression-language``
(Rust's ``cel`` crate): on a typical condition it compiled and evaluated in 70 µs,
and evaluated a compiled condition in 21 µs, where the pure-Python ``cel-python``
took 950 µs and 440 µs (docs/federation.md).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import cel

from authserver.domain.credentials import UNSET, CredentialPatch, NewCredential, Unset
from authserver.domain.urls import issuer_problem
from authserver.errors import InvalidArgument

MAX_CONDITION = 1024
MAX_ISSUER = 512
MAX_AUDIENCE = 512
#: RFC 8693 section 3: the subject token types a CI job's ID token is sent as.
SUBJECT_TOKEN_TYPES = (
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
)
TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ISSUED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
#: Leeway on a subject token's ``exp`` (and ``iat``/``nbf`` in the future), for clock skew.
CLOCK_LEEWAY = timedelta(seconds=60)


@dataclass(frozen=True)
class Preset:
    """A CI provider a trust can be made for: its issuer and the claims its tokens carry."""

    key: str
    name: str
    issuer: str
    claims: tuple[tuple[str, str], ...]  # (claim, what it says)
    example: str  # a condition to start from
    audience_hint: str


PRESETS: tuple[Preset, ...] = (
    Preset(
        key="github",
        name="GitHub Actions",
        issuer="https://token.actions.githubusercontent.com",
        claims=(
            ("repository", "owner/name of the repository the workflow runs in"),
            ("ref", "the git ref, e.g. refs/heads/main or refs/tags/v1"),
            ("environment", "the deployment environment of the job, if any"),
            ("workflow", "the workflow's name"),
            ("job_workflow_ref", "owner/repo/path/to/workflow.yml@ref of the workflow file"),
        ),
        example='claims.repository == "acme/deploy" && claims.ref == "refs/heads/main"',
        audience_hint="core.getIDToken(audience) or ?audience= on ACTIONS_ID_TOKEN_REQUEST_URL",
    ),
    Preset(
        key="gitlab",
        name="GitLab CI",
        issuer="https://gitlab.com",
        claims=(
            ("project_path", "group/project of the pipeline"),
            ("ref", "the branch or tag name, e.g. main"),
            ("ref_protected", '"true" when the branch or tag is protected'),
            ("environment", "the deployment environment of the job, if any"),
        ),
        example='claims.project_path == "acme/deploy" && claims.ref_protected == "true"',
        audience_hint="id_tokens: NAME: aud: in .gitlab-ci.yml",
    ),
)


def preset(key: str | None) -> Preset | None:
    return next((p for p in PRESETS if p.key == key), None)


# The condition ------------------------------------------------------------------------


class Condition:
    """A compiled CEL condition over ``claims``; ``holds`` says whether claims satisfy it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._program = _compile(text)

    def holds(self, claims: Mapping[str, Any]) -> bool:
        """True only when the expression evaluates to ``true``; an error (a missing claim, a
        type mismatch) or any other value is false."""
        try:
            result = self._program.execute({"claims": _cel_value(claims)})
        except Exception:  # the cel bindings raise KeyError, RuntimeError, ValueError, …
            return False
        return result is True


def _compile(text: str) -> Any:
    try:
        program = cel.compile(text)
    except (ValueError, RuntimeError) as exc:
        raise InvalidArgument(_first_line(str(exc)), field="condition") from None
    unknown = sorted(set(program.variables()) - {"claims"})
    if unknown:
        raise InvalidArgument(
            f"unknown variable {', '.join(unknown)}: a condition reads the token's claims, "
            'e.g. claims.repository == "acme/deploy"',
            field="condition",
        )
    return program


def _first_line(message: str) -> str:
    """cel's parse errors: the first line names the problem, the rest draws a caret."""
    lines = [line for line in message.splitlines() if line.strip()]
    text = " ".join(lines[:2]) if len(lines) > 1 and lines[0].endswith(":") else lines[0]
    return text.replace("Failed to parse expression", "cannot parse").strip()[:300]


def _cel_value(value: Any) -> Any:
    """JSON claims as CEL values: whole floats stay numbers, nothing else changes."""
    if isinstance(value, Mapping):
        return {str(k): _cel_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cel_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@functools.lru_cache(maxsize=1024)
def compiled(text: str) -> Condition:
    """The compiled condition (compiled once per process for each text)."""
    return Condition(text)


def check_condition(value: Any) -> str:
    """A condition as saved: required, at most 1024 characters, and compiling."""
    if not isinstance(value, str):
        raise InvalidArgument("expected a string", field="condition")
    text: str = value.strip()
    if not text:
        raise InvalidArgument(
            'required: a CEL expression over claims, e.g. claims.repository == "acme/deploy"',
            field="condition",
        )
    if len(text) > MAX_CONDITION:
        raise InvalidArgument(f"at most {MAX_CONDITION} characters", field="condition")
    compiled(text)
    return text


def evaluate(text: str, claims: Mapping[str, Any]) -> bool:
    """Whether ``claims`` satisfy the condition ``text`` (checked first, as when saved)."""
    return compiled(check_condition(text)).holds(claims)


# The other fields -------------------------------------------------------------------------


def check_issuer(value: Any) -> str:
    """The CI provider's issuer URL: https, or http on a loopback host."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument("required: the CI provider's issuer URL", field="issuer")
    url: str = value.strip()
    if len(url) > MAX_ISSUER:
        raise InvalidArgument(f"at most {MAX_ISSUER} characters", field="issuer")
    problem = issuer_problem(url)
    if problem is not None:
        raise InvalidArgument(problem, field="issuer")
    return url


def check_audience(value: Any, default: str) -> str:
    """The ``aud`` the job's token must carry; empty means ``default`` (our issuer URL)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if not isinstance(value, str):
        raise InvalidArgument("expected a string", field="audience")
    audience: str = value.strip()
    if len(audience) > MAX_AUDIENCE or not audience.isprintable():
        raise InvalidArgument(f"at most {MAX_AUDIENCE} printable characters", field="audience")
    return audience


def discovery_url(issuer: str) -> str:
    """OpenID Connect Discovery 1.0 section 4: the issuer, then the well-known path."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class NewTrust:
    """What a front door asks for when it creates a trust (not yet validated)."""

    issuer: str
    condition: str
    audience: str | None = None
    display_name: str | None = None
    allow_source_cidr: Sequence[str] = ()
    scoped_roles: Sequence[str] = ()
    expires_in: timedelta | None = None
    require_dpop: bool = False

    @property
    def credential(self) -> NewCredential:
        return NewCredential(
            display_name=self.display_name,
            allow_source_cidr=self.allow_source_cidr,
            scoped_roles=self.scoped_roles,
            expires_in=self.expires_in,
            require_dpop=self.require_dpop,
        )


@dataclass(frozen=True)
class TrustPatch:
    """A change to a trust: its own fields, and those it shares with personal clients."""

    credential: CredentialPatch = CredentialPatch()
    issuer: str | Unset = UNSET
    audience: str | None | Unset = UNSET
    condition: str | Unset = UNSET

    @property
    def is_empty(self) -> bool:
        own = (self.issuer, self.audience, self.condition)
        return self.credential.is_empty and all(v is UNSET for v in own)


@dataclass(frozen=True)
class CheckedTrustFields:
    """A trust's own fields after validation (``UNSET``: unchanged)."""

    issuer: str | Unset = UNSET
    audience: str | Unset = UNSET
    condition: str | Unset = UNSET


def check_trust_patch(patch: TrustPatch, *, default_audience: str) -> CheckedTrustFields:
    return CheckedTrustFields(
        issuer=check_issuer(patch.issuer) if patch.issuer is not UNSET else UNSET,
        audience=(
            check_audience(patch.audience, default_audience)
            if patch.audience is not UNSET
            else UNSET
        ),
        condition=check_condition(patch.condition) if patch.condition is not UNSET else UNSET,
    )
