"""Personal client credentials: the rules that govern them.

Every front door (token endpoint, management API, registration, CLI, pages)
calls these functions, through the credential use cases; none re-implements a
rule. Errors name the field they are about with its domain name
(``display_name``, ``allow_source_cidr``, ``scoped_roles``, ``expires_time``);
each front door renders that name in its own vocabulary.
"""

from __future__ import annotations

import enum
import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from authserver.domain import network, roles
from authserver.domain.words import ADJECTIVES, NOUNS
from authserver.errors import InvalidArgument, PermissionDenied
from authserver.records import ClientRecord, TrustRecord

MAX_DISPLAY_NAME = 200


def new_client_id(issuer_host: str, kind: str = "pcc") -> str:
    """A fresh ``<adjective>-<noun>-<5 digits>@<issuer host>/<kind>``: ``pcc`` for a personal
    client, ``wfe`` for a federation trust (ConductorOne's suffixes).

    Uniqueness is the store's job (unique index, retried on collision).
    """
    adjective = secrets.choice(ADJECTIVES)
    noun = secrets.choice(NOUNS)
    digits = secrets.randbelow(90000) + 10000
    return f"{adjective}-{noun}-{digits}@{issuer_host}/{kind}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(text: str) -> bool:
    """True for C0 controls or DEL; such text is never a valid identifier (and NUL breaks SQL)."""
    return _CONTROL.search(text) is not None


def validate_display_name(name: str | None) -> str:
    """Free text, at most 200 characters, no control characters."""
    if name is None:
        return ""
    if not isinstance(name, str):
        raise InvalidArgument("expected a string", field="display_name")
    if len(name) > MAX_DISPLAY_NAME:
        raise InvalidArgument(f"at most {MAX_DISPLAY_NAME} characters", field="display_name")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        raise InvalidArgument("control characters are not allowed", field="display_name")
    return name.strip()


# Who asks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who asks for a credential change, and with which powers.

    A token's holder (management API, registration with an access token), a
    person signed in to the pages, a registration access token acting for its
    own credential, or the operator (CLI). ``reduced`` callers hold less than
    their owner's roles and may manage only what holds no more than they do.
    """

    user_id: str | None
    effective_roles: frozenset[str]
    reduced: bool
    is_operator: bool = False
    #: The credential the caller acts through, if any (it may always manage itself).
    credential_id: str | None = None
    #: How the caller authenticated, for the audit trail (e.g. "access_token").
    via: str | None = None
    #: The network lock and expiry of that credential: what it creates or edits gets no
    #: wider a lock and no later an expiry (unless the caller holds the admin role).
    allow_source_cidr: tuple[network.Network, ...] = ()
    expires_time: datetime | None = None
    #: The calling credential gets tokens only with a DPoP proof: what it creates or edits
    #: requires one too (unless the caller holds the admin role).
    require_dpop: bool = False
    #: False for a tool the person approved in the browser (a device token): it acts on
    #: the person's own credentials only, even when the person holds the admin role.
    may_administer: bool = True

    @classmethod
    def operator(cls) -> Caller:
        return cls(
            user_id=None,
            effective_roles=frozenset(),
            reduced=False,
            is_operator=True,
            via="cli",
        )

    @property
    def actor(self) -> str:
        """The audit trail's name for the caller: the user id, or ``operator``."""
        return "operator" if self.is_operator or self.user_id is None else self.user_id


def is_admin(caller: Caller, admin_role: str) -> bool:
    """True for a caller whose effective roles hold the admin role (and who may use it)."""
    return caller.may_administer and admin_role in caller.effective_roles


# Creating --------------------------------------------------------------------------


@dataclass(frozen=True)
class NewCredential:
    """What a front door asks for when it creates a credential (not yet validated)."""

    display_name: str | None = None
    allow_source_cidr: Sequence[str] = ()
    scoped_roles: Sequence[str] = ()
    expires_in: timedelta | None = None
    require_dpop: bool = False


@dataclass(frozen=True)
class CredentialSpec:
    """Validated fields of a credential about to be created."""

    display_name: str
    allow_source_cidr: tuple[str, ...]
    scoped_roles: tuple[str, ...]
    expires_time: datetime | None
    require_dpop: bool = False


def check_new_credential(
    *,
    caller: Caller,
    owner_roles: Iterable[str],
    new: NewCredential,
    now: datetime,
    caller_limits: bool = True,
    max_lifetime: timedelta | None = None,
    admin_role: str | None = None,
) -> CredentialSpec:
    """Validate a new credential's fields and apply the no-escalation rules.

    ``max_lifetime`` (the ``[policy]``): a credential asked for without an expiry
    gets exactly this one; a later expiry is refused, naming the policy.

    With ``caller_limits`` (every caller but an admin), a caller acting through a
    network-locked or expiring credential passes those limits on: the new
    credential inherits them when it asks for none, and may not ask for more.
    ``admin_role`` names the role a caller that may not administer never passes on
    unless it holds it itself (see ``scope_for_non_administrator``).
    """
    requested = tuple(new.scoped_roles)
    if admin_role is not None:
        requested = scope_for_non_administrator(caller, owner_roles, requested, admin_role)
    scoped = _check_scoped_roles(caller, owner_roles, requested)
    cidrs = _cidrs(new.allow_source_cidr)
    expires = now + new.expires_in if new.expires_in is not None else None
    if caller_limits:
        if caller.allow_source_cidr and not cidrs:
            cidrs = tuple(str(net) for net in caller.allow_source_cidr)
        if caller.expires_time is not None and expires is None:
            expires = caller.expires_time
    if max_lifetime is not None:
        if expires is None:
            expires = now + max_lifetime
        elif expires > now + max_lifetime:
            raise InvalidArgument(
                f"the lifetime policy allows at most {describe_duration(max_lifetime)}",
                field="expires_time",
            )
    if caller_limits:
        _check_within_caller_limits(caller, cidrs, expires)
    return CredentialSpec(
        display_name=validate_display_name(new.display_name),
        allow_source_cidr=cidrs,
        scoped_roles=scoped,
        expires_time=expires,
        # A caller held to DPoP passes the rule on, as it does its network lock.
        require_dpop=new.require_dpop or (caller_limits and caller.require_dpop),
    )


def scope_for_non_administrator(
    caller: Caller, owner_roles: Iterable[str], requested: Sequence[str], admin_role: str
) -> tuple[str, ...]:
    """The roles a credential made by a caller that may not administer is reduced to.

    A device token (``may_administer`` False) holds the admin role only when the tool
    asked for it and the person approved that plainly. Without it, an unreduced
    credential of an admin owner would hold the admin role after all; so such a
    request without roles is scoped to the caller's own roles instead (what
    ``cone login`` asks for), and one naming the admin role is refused.
    """
    if caller.is_operator or caller.may_administer:
        return tuple(requested)
    if admin_role in caller.effective_roles:
        return tuple(requested)  # the person granted it explicitly at approval
    if admin_role in requested:
        raise PermissionDenied(
            f"this token was not granted {admin_role}; ask for it in the device login's scope",
            field="scoped_roles",
        )
    if requested or admin_role not in set(owner_roles):
        return tuple(requested)
    own = sorted(caller.effective_roles & set(owner_roles))
    if not own:
        raise PermissionDenied(
            f"this token holds no roles besides {admin_role}, which it was not granted; "
            f"start the device login with scope {admin_role} to grant it",
            field="scoped_roles",
        )
    return tuple(own)


def _check_within_caller_limits(
    caller: Caller, cidrs: Sequence[str] | None, expires: datetime | None | Unset
) -> None:
    """No wider network lock (``cidrs`` None: not being set) and no later expiry than the
    caller's own credential has."""
    if caller.allow_source_cidr and cidrs is not None:
        wider = [
            c for c in cidrs if not network.within(network.parse_cidr(c), caller.allow_source_cidr)
        ]
        if wider or not cidrs:
            raise PermissionDenied(
                "may not reach beyond the networks of the calling credential "
                f"({', '.join(str(n) for n in caller.allow_source_cidr)})",
                field="allow_source_cidr",
            )
    if caller.expires_time is not None and expires is not UNSET:
        if expires is None or expires > caller.expires_time:
            raise PermissionDenied(
                "may not be later than the calling credential's expiry", field="expires_time"
            )


def _cidrs(values: Iterable[str]) -> tuple[str, ...]:
    try:
        return network.normalize_cidrs(values)
    except InvalidArgument as exc:
        raise exc.about("allow_source_cidr") from None


def _check_scoped_roles(
    caller: Caller, owner_roles: Iterable[str], requested: Iterable[str]
) -> tuple[str, ...]:
    try:
        scoped = roles.normalize_roles(requested)
    except InvalidArgument as exc:
        raise exc.about("scoped_roles") from None
    missing = sorted(set(scoped) - set(owner_roles))
    if missing:
        raise InvalidArgument(f"the owner does not hold {', '.join(missing)}", field="scoped_roles")
    _check_no_escalation(caller, scoped)
    return scoped


def _check_no_escalation(caller: Caller, scoped: Sequence[str]) -> None:
    if caller.is_operator or not caller.reduced:
        return
    if not scoped:
        raise PermissionDenied(
            "a reduced credential cannot create an unreduced credential; name its roles",
            field="scoped_roles",
        )
    extra = sorted(set(scoped) - caller.effective_roles)
    if extra:
        raise PermissionDenied(
            f"exceed the caller's roles: {', '.join(extra)}", field="scoped_roles"
        )


# Managing --------------------------------------------------------------------------


def check_may_manage(caller: Caller, target: ClientRecord | TrustRecord) -> None:
    """A reduced caller may change or delete only credentials that can never hold more than it.

    Otherwise a credential reduced to ``billing:read`` could lift the CIDR lock of,
    or delete, its owner's ``system:owner`` credential. What a credential may
    hold is judged by its ``scopedRoles``, not by what the owner holds today: an
    unreduced credential, or one scoped to a role the owner lacks right now,
    grows stronger when the owner's roles grow back. A credential may always
    manage itself.
    """
    if caller.is_operator or not caller.reduced or caller.credential_id == target.id:
        return
    if not target.scoped_roles:
        raise PermissionDenied("a reduced credential cannot manage an unreduced credential")
    extra = sorted(set(target.scoped_roles) - caller.effective_roles)
    if extra:
        raise PermissionDenied(
            f"a reduced credential cannot manage a credential scoped to {', '.join(extra)}"
        )


class Unset(enum.Enum):
    """The type of ``UNSET``: a field a patch leaves as it is."""

    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(frozen=True)
class CredentialPatch:
    """A change to a credential: each field is a new value, or ``UNSET`` to keep it.

    ``expires_time`` may be ``None`` in a request (clearing it), which the rules
    refuse once an expiry is set.
    """

    display_name: str | None | Unset = UNSET
    allow_source_cidr: Sequence[str] | Unset = UNSET
    scoped_roles: Sequence[str] | Unset = UNSET
    expires_time: datetime | None | Unset = UNSET
    require_dpop: bool | Unset = UNSET

    @property
    def is_empty(self) -> bool:
        return all(
            value is UNSET
            for value in (
                self.display_name,
                self.allow_source_cidr,
                self.scoped_roles,
                self.expires_time,
                self.require_dpop,
            )
        )


@dataclass(frozen=True)
class CheckedPatch:
    """A ``CredentialPatch`` after validation: normalised values, ready to store."""

    display_name: str | Unset = UNSET
    allow_source_cidr: tuple[str, ...] | Unset = UNSET
    scoped_roles: tuple[str, ...] | Unset = UNSET
    expires_time: datetime | None | Unset = UNSET
    require_dpop: bool | Unset = UNSET


def check_update(
    *,
    caller: Caller,
    owner_roles: Iterable[str],
    current: ClientRecord | TrustRecord,
    patch: CredentialPatch,
    caller_limits: bool = True,
) -> CheckedPatch:
    """Validate a patch: no escalation for ``scoped_roles``, ``expires_time`` only earlier,
    and (``caller_limits``) no wider lock or later expiry than the caller's own credential."""
    checked = CheckedPatch()
    if patch.display_name is not UNSET:
        checked = replace(checked, display_name=validate_display_name(patch.display_name))
    if patch.allow_source_cidr is not UNSET:
        checked = replace(checked, allow_source_cidr=_cidrs(patch.allow_source_cidr))
    if patch.scoped_roles is not UNSET:
        scoped = _check_scoped_roles(caller, owner_roles, patch.scoped_roles)
        checked = replace(checked, scoped_roles=scoped)
    if patch.expires_time is not UNSET:
        value = patch.expires_time
        if current.expires_time is not None and (value is None or value > current.expires_time):
            raise PermissionDenied("may only move earlier", field="expires_time")
        checked = replace(checked, expires_time=value)
    if patch.require_dpop is not UNSET:
        if not isinstance(patch.require_dpop, bool):
            raise InvalidArgument("expected true or false", field="require_dpop")
        if caller_limits and caller.require_dpop and not patch.require_dpop:
            raise PermissionDenied(
                "a credential held to DPoP may not lift that rule", field="require_dpop"
            )
        checked = replace(checked, require_dpop=patch.require_dpop)
    if caller_limits:
        cidrs = checked.allow_source_cidr
        _check_within_caller_limits(caller, None if cidrs is UNSET else cidrs, checked.expires_time)
    return checked


def check_narrowing(
    *, current: ClientRecord, owner_roles: Iterable[str], patch: CheckedPatch
) -> None:
    """Refuse a checked patch that would widen the credential (the self-service page only
    narrows): roles only among those it has now, networks only inside its current lock.
    A later expiry is refused by ``check_update`` for everyone."""
    if patch.scoped_roles is not UNSET:
        now_has = roles.effective_roles(owner_roles, current.scoped_roles)
        if not patch.scoped_roles and current.scoped_roles:
            raise PermissionDenied(
                "keep at least one role: without any it would get all of the owner's",
                field="scoped_roles",
            )
        wider = sorted(set(patch.scoped_roles) - set(now_has))
        if wider:
            raise PermissionDenied(
                f"may only keep roles it has now, not {', '.join(wider)}", field="scoped_roles"
            )
    if patch.allow_source_cidr is not UNSET and current.allow_source_cidr:
        locks = [network.parse_cidr(c) for c in current.allow_source_cidr]
        cidrs = patch.allow_source_cidr
        wider = [c for c in cidrs if not network.within(network.parse_cidr(c), locks)]
        if wider or not cidrs:
            raise PermissionDenied(
                "may only keep networks inside its current ones "
                f"({', '.join(current.allow_source_cidr)})",
                field="allow_source_cidr",
            )


# Authenticating ----------------------------------------------------------------------


@dataclass(frozen=True)
class Federation:
    """What a federation trust accepts: tokens of ``issuer`` for ``audience`` whose claims
    satisfy ``condition`` (a CEL expression)."""

    issuer: str
    audience: str
    condition: str


@dataclass(frozen=True)
class PreviousSecret:
    """The secret a credential had before its last rotation, good until ``until``."""

    secret_hash: str = field(repr=False)
    public_jwk: dict[str, str]
    secret_domain: str | None
    until: datetime


@dataclass(frozen=True)
class AuthState:
    """What authentication needs to know about a credential and its owner, read together."""

    id: str
    client_id: str
    user_id: str
    secret_hash: str = field(repr=False)  # never in a log line, even at debug level
    allow_source_cidr: tuple[network.Network, ...] = ()
    scoped_roles: frozenset[str] = frozenset()
    expires_time: datetime | None = None
    deleted: bool = False
    owner_roles: frozenset[str] = frozenset()
    owner_disabled: bool = False
    public_keys: tuple[dict[str, str], ...] = ()
    auth_method: str | None = None
    secret_domain: str | None = None  # of the secret issued; None: none was
    last_used_at: datetime | None = None  # as stored (it lags real use by up to a second)
    created_at: datetime | None = None
    previous: PreviousSecret | None = None  # rotated, and still in its grace period

    def previous_in_force(self, now: datetime) -> PreviousSecret | None:
        """The previous secret while its grace period lasts, else None."""
        if self.previous is not None and now < self.previous.until:
            return self.previous
        return None

    require_dpop: bool = False  # tokens only with a DPoP proof (RFC 9449)
    #: A person acting through a device client: tokens issued before this are inactive.
    tokens_not_before: datetime | None = None
    #: A federation trust (SPEC section 12): the issuer, audience and condition it trusts.
    federation: Federation | None = None

    @property
    def effective_roles(self) -> frozenset[str]:
        return roles.effective_roles(self.owner_roles, self.scoped_roles)


def method_allowed(state: AuthState, method: str) -> bool:
    """A client registered for ``private_key_jwt`` authenticates only that way.

    Credentials made by the CLI or the management API (no registered method)
    may use their secret directly or sign assertions with the key inside it.
    """
    return state.auth_method != "private_key_jwt" or method == "private_key_jwt"


def refusal_reason(
    state: AuthState | None,
    *,
    now: datetime,
    source: network.Address | None,
    check_source: bool = True,
    max_idle: timedelta | None = None,
) -> str | None:
    """Why this credential may not authenticate now from ``source``; None when it may.

    The secret is checked separately (it costs an argon2 verification). Token
    validity uses the same rules without the source check (``check_source``).
    """
    if state is None:
        return "unknown client_id"
    if state.deleted:
        return "credential deleted"
    if state.expires_time is not None and now >= state.expires_time:
        return "credential expired"
    if state.owner_disabled:
        return "owner disabled"
    if max_idle is not None and idle_since(state) is not None:
        since = idle_since(state)
        assert since is not None
        if now - since >= max_idle:
            return "idle"
    if check_source and not network.address_allowed(source, state.allow_source_cidr):
        return f"source address {source} outside allowSourceCidr"
    return None


def idle_since(state: AuthState) -> datetime | None:
    """Since when a credential has been unused: its last use, or its creation."""
    return state.last_used_at or state.created_at


def describe_duration(value: timedelta) -> str:
    """``90 days``, ``12 hours``: a policy's length in words."""
    seconds = int(value.total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' * (count != 1)}"
    raise AssertionError("unreachable")


def issued_too_early(state: AuthState, issued_at: float) -> bool:
    """True for a token issued at or before the owner's ``tokens_not_before`` (whole seconds:
    ``iat`` has no more, so a token of the same second is refused too)."""
    not_before = state.tokens_not_before
    return not_before is not None and issued_at <= not_before.timestamp()


def token_expiry(state: AuthState, *, now: datetime, ttl: int) -> datetime:
    """``now + ttl``, never after the credential's ``expiresTime``."""
    expiry = now + timedelta(seconds=ttl)
    if state.expires_time is not None and state.expires_time < expiry:
        return state.expires_time
    return expiry
