"""allowSourceCidr at the token endpoint: IPv4, IPv6, bare addresses, trusted proxies."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.support.types import MakeClient, MakeUser


def mint(
    client: TestClient,
    make_user: MakeUser,
    make_client: MakeClient,
    cidrs: tuple[str, ...],
    **headers: str,
) -> int:
    record, secret = make_client(make_user(), cidrs=cidrs)
    response = client.post(
        "/auth/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(record.client_id, secret),
        headers=headers,
    )
    return response.status_code


@pytest.mark.parametrize("peer", ["203.0.113.7"])
def test_ipv4_peer_inside_cidr_is_allowed(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    assert mint(client, make_user, make_client, ("203.0.113.0/24",)) == 200


@pytest.mark.parametrize("peer", ["198.51.100.9"])
def test_ipv4_peer_outside_cidr_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    assert mint(client, make_user, make_client, ("203.0.113.0/24",)) == 401


@pytest.mark.parametrize("peer", ["2001:db8:1::42"])
def test_ipv6_peer_inside_cidr_is_allowed(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    assert mint(client, make_user, make_client, ("2001:db8:1::/48",)) == 200


@pytest.mark.parametrize("peer", ["2001:db8:2::42"])
def test_ipv6_peer_outside_cidr_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    assert mint(client, make_user, make_client, ("2001:db8:1::/48",)) == 401


@pytest.mark.parametrize("peer", ["203.0.113.7"])
def test_bare_address_matches_exactly(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    assert mint(client, make_user, make_client, ("203.0.113.7",)) == 200


@pytest.mark.parametrize("peer", ["203.0.113.8"])
def test_bare_address_refuses_neighbour(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    assert mint(client, make_user, make_client, ("203.0.113.7",)) == 401


@pytest.mark.parametrize("peer", ["::ffff:203.0.113.7"])
def test_ipv4_mapped_ipv6_peer_matches_ipv4_cidr(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    assert mint(client, make_user, make_client, ("203.0.113.0/24",)) == 200


@pytest.mark.parametrize("peer", ["203.0.113.7"])
def test_one_of_several_cidrs_is_enough(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    assert mint(client, make_user, make_client, ("2001:db8::/32", "203.0.113.0/28")) == 200


@pytest.mark.parametrize("peer", ["198.51.100.9"])
def test_no_cidr_lock_allows_any_source(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    assert mint(client, make_user, make_client, ()) == 200


@pytest.mark.parametrize("peer", ["198.51.100.9"])
def test_forwarded_for_from_untrusted_peer_is_ignored(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    status = mint(
        client, make_user, make_client, ("203.0.113.0/24",), **{"X-Forwarded-For": "203.0.113.7"}
    )
    assert status == 401


PROXY = {"trusted_proxies": ("10.0.0.0/8",)}


@pytest.mark.parametrize("settings_overrides", [PROXY])
@pytest.mark.parametrize("peer", ["10.1.2.3"])
def test_forwarded_for_from_trusted_proxy_is_used(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    status = mint(
        client, make_user, make_client, ("203.0.113.0/24",), **{"X-Forwarded-For": "203.0.113.7"}
    )
    assert status == 200


@pytest.mark.parametrize("settings_overrides", [PROXY])
@pytest.mark.parametrize("peer", ["10.1.2.3"])
def test_forwarded_for_uses_right_most_untrusted_hop(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    # The client forged the left-most entry; the proxy appended the real address.
    forwarded = "203.0.113.7, 198.51.100.9, 10.9.9.9"
    status = mint(
        client, make_user, make_client, ("203.0.113.0/24",), **{"X-Forwarded-For": forwarded}
    )
    assert status == 401


@pytest.mark.parametrize("settings_overrides", [PROXY])
@pytest.mark.parametrize("peer", ["10.1.2.3"])
def test_forwarded_for_skips_trusted_hops(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    forwarded = "203.0.113.7, 10.9.9.9"
    status = mint(
        client, make_user, make_client, ("203.0.113.0/24",), **{"X-Forwarded-For": forwarded}
    )
    assert status == 200


@pytest.mark.parametrize("settings_overrides", [PROXY])
@pytest.mark.parametrize("peer", ["10.1.2.3"])
def test_malformed_forwarded_for_refuses_locked_credential(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    status = mint(
        client, make_user, make_client, ("10.0.0.0/8",), **{"X-Forwarded-For": "not-an-ip"}
    )
    assert status == 401


@pytest.mark.parametrize("settings_overrides", [PROXY])
@pytest.mark.parametrize("peer", ["10.1.2.3"])
def test_proxy_without_forwarded_for_is_the_source(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    assert mint(client, make_user, make_client, ("10.0.0.0/8",)) == 200


@pytest.mark.parametrize("settings_overrides", [PROXY])
@pytest.mark.parametrize("peer", ["10.1.2.3"])
def test_ipv6_client_behind_trusted_proxy(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    status = mint(
        client, make_user, make_client, ("2001:db8::/32",), **{"X-Forwarded-For": "2001:db8::1"}
    )
    assert status == 200
