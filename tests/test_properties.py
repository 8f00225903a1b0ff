"""Property-based tests (Hypothesis) of the parsers that face hostile input."""

from __future__ import annotations

import base64
import ipaddress
import os
from datetime import timedelta
from ipaddress import IPv4Address, IPv6Address

from authlib.oauth2.rfc6749 import OAuth2Error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authserver.api import bodies
from authserver.domain import durations, network, roles
from authserver.errors import InvalidArgument
from authserver.oauth.adapter import parse_form
from authserver.oauth.client_auth import presented_credentials
from authserver.oauth.errors import InvalidClient

FAST = settings(
    max_examples=int(os.environ.get("AUTHSERVER_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(st.text(max_size=80))
def test_cidr_parser_accepts_or_rejects_cleanly(text: str) -> None:
    try:
        result = network.normalize_cidrs([text])
    except InvalidArgument:
        return
    assert ipaddress.ip_network(result[0])  # whatever it accepts is a real network


@FAST
@given(st.ip_addresses(), st.integers(min_value=0, max_value=128))
def test_every_network_round_trips(address: IPv4Address | IPv6Address, prefix: int) -> None:
    prefix = min(prefix, address.max_prefixlen)
    net = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    (canonical,) = network.normalize_cidrs([str(net)])
    assert ipaddress.ip_network(canonical).num_addresses == net.num_addresses


@FAST
@given(st.ip_addresses(v=4))
def test_ipv4_mapped_peer_is_its_ipv4_address(address: IPv4Address) -> None:
    assert network.parse_address(f"::ffff:{address}") == address


@FAST
@given(st.text(max_size=30))
def test_duration_parser_never_crashes(text: str) -> None:
    try:
        value = durations.parse_duration(text)
    except InvalidArgument:
        return
    assert timedelta(0) < value <= durations.MAX_DURATION


@FAST
@given(st.integers(min_value=1, max_value=10**6), st.sampled_from("smhd"))
def test_valid_durations_parse(number: int, unit: str) -> None:
    seconds = number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    text = f"{number}{unit}"
    if seconds > durations.MAX_DURATION.total_seconds():
        return
    assert durations.parse_duration(text) == timedelta(seconds=seconds)


@FAST
@given(st.text(max_size=40))
def test_proto_duration_parser_never_crashes(text: str) -> None:
    try:
        durations.parse_proto_duration(text)
    except InvalidArgument:
        pass


@FAST
@given(st.text(max_size=200))
def test_scope_parser_returns_valid_role_names_or_none(text: str) -> None:
    parsed = roles.parse_scope(text)
    if parsed is not None:
        assert all(roles.validate_role(name) for name in parsed)


@FAST
@given(st.one_of(st.text(max_size=120), st.lists(st.text(max_size=20), max_size=5)))
def test_update_mask_accepts_only_writable_fields(mask: str | list[str]) -> None:
    try:
        paths = bodies.parse_update_mask(mask)
    except InvalidArgument:
        return
    assert paths and set(paths) <= set(bodies.WRITABLE)


@FAST
@given(st.binary(max_size=200))
def test_basic_header_decoding_never_crashes(raw: bytes) -> None:
    header = "Basic " + base64.b64encode(raw).decode()
    try:
        presented = presented_credentials({"authorization": header}, {})
    except InvalidClient:
        return
    assert presented.method == "client_secret_basic" and presented.client_id and presented.secret


@FAST
@given(st.text(max_size=100))
def test_arbitrary_authorization_header_never_crashes(header: str) -> None:
    try:
        presented_credentials({"authorization": header}, {})
    except OAuth2Error:
        pass


@FAST
@given(st.binary(max_size=300))
def test_form_parser_never_crashes(body: bytes) -> None:
    try:
        form = parse_form(body)
    except OAuth2Error as error:
        assert error.error == "invalid_request"
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in form.items())
