"""The admin inventory's query on SQLite and PostgreSQL: each filter, the orders, paging,
and deleting a selection through the credential use case."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from authserver.config import Settings
from authserver.domain.credentials import Caller, NewCredential
from authserver.domain.federation import NewTrust
from authserver.errors import NotFound
from authserver.records import ClientRecord, TrustRecord, UserRecord
from authserver.store import Database, Store
from authserver.store.inventory import InventoryFilter
from authserver.store.models import PersonalClient
from authserver.usecases.container import UseCases
from tests.support.helpers import now
from tests.support.types import MakeUser

ADMIN = Caller(user_id="admin", effective_roles=frozenset({"system:owner"}), reduced=False)


@pytest.fixture
def cases(settings: Settings, database: Database) -> Iterator[UseCases]:
    yield UseCases.build(settings, database)


def _create(cases: UseCases, owner: UserRecord, name: str, **new: Any) -> ClientRecord:
    spec = NewCredential(display_name=name, **new)
    return cases.credentials.create(
        caller=Caller.operator(), owner_id=owner.id, new=spec, now=now()
    ).record


def _names(cases: UseCases, sort: str = "name", **where: Any) -> list[str]:
    found, total = cases.inventory.page(
        caller=ADMIN,
        where=InventoryFilter(**where),
        sort=sort,
        offset=0,
        limit=100,
    )
    assert total == len(found)
    return [item.name for item in found]


def _set(database: Database, record: ClientRecord, **values: object) -> None:
    with database.engine.begin() as conn:
        conn.execute(update(PersonalClient).where(PersonalClient.id == record.id).values(**values))


def test_filters_by_owner_email_or_name(cases: UseCases, make_user: MakeUser) -> None:
    alice, bob = make_user("alice@example.com"), make_user("bob@example.com")
    _create(cases, alice, "a1")
    _create(cases, bob, "b1")
    assert _names(cases, owner="ALICE") == ["a1"]


def test_filters_by_expiring_before(cases: UseCases, make_user: MakeUser) -> None:
    alice = make_user()
    _create(cases, alice, "soon", expires_in=timedelta(days=2))
    _create(cases, alice, "later", expires_in=timedelta(days=60))
    _create(cases, alice, "never")
    assert _names(cases, expiring_before=now() + timedelta(days=7)) == ["soon"]


def test_filters_unused_since_and_never_used(
    cases: UseCases, database: Database, make_user: MakeUser
) -> None:
    alice = make_user()
    _set(database, _create(cases, alice, "recent"), last_used_at=now() - timedelta(hours=1))
    _set(database, _create(cases, alice, "stale"), last_used_at=now() - timedelta(days=100))
    _create(cases, alice, "never")
    assert _names(cases, unused_since=now() - timedelta(days=30)) == ["never", "stale"]
    assert _names(cases, never_used=True) == ["never"]


def test_filters_outside_the_lifetime_policy(
    cases: UseCases, database: Database, make_user: MakeUser
) -> None:
    alice = make_user()
    _create(cases, alice, "short", expires_in=timedelta(days=30))
    _create(cases, alice, "long", expires_in=timedelta(days=365))
    _create(cases, alice, "forever")
    rotated = _create(cases, alice, "rotated", expires_in=timedelta(days=200))
    # Rotated 150 days in: its current lifetime is 50 days, within a 90-day policy.
    _set(database, rotated, rotated_at=now() + timedelta(days=150))
    assert _names(cases, longer_than=timedelta(days=90)) == ["forever", "long"]


def test_filters_network_locked_and_requires_dpop(cases: UseCases, make_user: MakeUser) -> None:
    alice = make_user()
    _create(cases, alice, "locked", allow_source_cidr=["10.0.0.0/8"])
    _create(cases, alice, "dpop", require_dpop=True)
    _create(cases, alice, "plain")
    assert _names(cases, network_locked=True) == ["locked"]
    assert _names(cases, requires_dpop=True) == ["dpop"]


def test_deleted_credentials_are_not_listed(cases: UseCases, make_user: MakeUser) -> None:
    alice = make_user()
    gone = _create(cases, alice, "gone")
    _create(cases, alice, "kept")
    cases.credentials.delete(caller=Caller.operator(), ref=gone.id, now=now())
    assert _names(cases) == ["kept"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        pytest.param("created", ["c", "b", "a"], id="newest"),
        pytest.param("created-oldest", ["a", "b", "c"], id="oldest"),
        pytest.param("name", ["a", "b", "c"], id="name"),
        pytest.param("expires", ["b", "a", "c"], id="expires-never-last"),
        pytest.param("last-used", ["c", "a", "b"], id="used-never-last"),
        pytest.param("least-used", ["b", "a", "c"], id="least-used-never-first"),
    ],
)
def test_orders(
    cases: UseCases, database: Database, make_user: MakeUser, sort: str, expected: list[str]
) -> None:
    alice = make_user()
    a = _create(cases, alice, "a", expires_in=timedelta(days=20))
    b = _create(cases, alice, "b", expires_in=timedelta(days=10))
    c = _create(cases, alice, "c")
    base = now()
    _set(database, a, last_used_at=base - timedelta(days=3), created_at=base - timedelta(hours=3))
    _set(database, b, created_at=base - timedelta(hours=2))
    _set(database, c, last_used_at=base - timedelta(days=1), created_at=base - timedelta(hours=1))
    assert _names(cases, sort=sort) == expected


def test_orders_by_owner(cases: UseCases, make_user: MakeUser) -> None:
    _create(cases, make_user("zed@example.com"), "z")
    _create(cases, make_user("amy@example.com"), "a")
    assert _names(cases, sort="owner") == ["a", "z"]


def test_pages_and_counts(cases: UseCases, make_user: MakeUser) -> None:
    alice = make_user()
    for n in range(7):
        _create(cases, alice, f"c{n}")
    first, total = cases.inventory.page(
        caller=ADMIN, where=InventoryFilter(), sort="name", offset=0, limit=5
    )
    rest, _ = cases.inventory.page(
        caller=ADMIN, where=InventoryFilter(), sort="name", offset=5, limit=5
    )
    assert total == 7
    assert [i.name for i in first + rest] == [f"c{n}" for n in range(7)]


def test_only_admins_read_the_inventory(cases: UseCases, make_user: MakeUser) -> None:
    person = Caller(user_id="u", effective_roles=frozenset({"deploy"}), reduced=False)
    with pytest.raises(NotFound):
        cases.inventory.page(caller=person, where=InventoryFilter(), sort="name", offset=0, limit=5)
    with pytest.raises(NotFound):
        cases.inventory.delete(caller=person, ids=["x"], now=now())


def test_deleting_a_selection_skips_the_ones_already_gone(
    cases: UseCases, make_user: MakeUser, store: Store
) -> None:
    alice = make_user()
    one, two, _ = (_create(cases, alice, n) for n in ("one", "two", "kept"))
    cases.credentials.delete(caller=Caller.operator(), ref=two.id, now=now())
    deleted = cases.inventory.delete(caller=ADMIN, ids=[one.id, two.id], now=now())
    assert [r.id for r in deleted] == [one.id]
    assert _names(cases) == ["kept"]


def _trust(cases: UseCases, owner: UserRecord, name: str) -> TrustRecord:
    return cases.trusts.create(
        caller=Caller.operator(),
        owner_id=owner.id,
        new=NewTrust(
            issuer="https://gitlab.com",
            condition='claims.project_path == "acme/site"',
            display_name=name,
        ),
        now=now(),
    )


def test_federation_trusts_are_listed_as_trusts(cases: UseCases, make_user: MakeUser) -> None:
    alice = make_user()
    _create(cases, alice, "a personal client")
    trust = _trust(cases, alice, "a trust")
    found, total = cases.inventory.page(
        caller=ADMIN, where=InventoryFilter(), sort="name", offset=0, limit=100
    )
    assert total == 2
    assert [(item.name, item.kind) for item in found] == [
        ("a personal client", "personal_client"),
        ("a trust", "federation_trust"),
    ]
    assert found[1].client_id == trust.client_id


def test_deleting_a_selection_deletes_trusts_through_their_use_case(
    cases: UseCases, store: Store, make_user: MakeUser
) -> None:
    alice = make_user()
    client = _create(cases, alice, "client")
    trust = _trust(cases, alice, "trust")
    deleted = cases.inventory.delete(caller=ADMIN, ids=[trust.id, client.id], now=now())
    assert sorted(record.id for record in deleted) == sorted([trust.id, client.id])
    assert store.trusts.get(id=trust.id).deleted_at is not None
    assert store.credentials.get(id=client.id).deleted_at is not None
    assert _names(cases) == []
