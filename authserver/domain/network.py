"""Source networks: parsing ``allowSourceCidr`` and finding a request's source address."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

from authserver.errors import InvalidArgument

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_CIDRS = 32


@functools.lru_cache(maxsize=4096)  # a server sees the same peers and proxies again and again
def parse_address(text: str) -> Address | None:
    """Parse an IP address; IPv4-mapped IPv6 (``::ffff:a.b.c.d``) becomes IPv4."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id:
            return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def parse_cidr(text: str) -> Network:
    """Parse a CIDR or a bare address (a /32 or /128); host bits must be zero."""
    if not isinstance(text, str) or not text or len(text) > 64 or text != text.strip():
        raise InvalidArgument(f"invalid CIDR {text!r}")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid CIDR {text!r}: {exc}") from None
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        if network.prefixlen >= 96:
            mapped = network.network_address.ipv4_mapped
            return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    return network


def normalize_cidrs(values: Iterable[str]) -> tuple[str, ...]:
    """Validate an ``allowSourceCidr`` list; returns canonical strings, order kept, no repeats."""
    result: list[str] = []
    for value in values:
        canonical = str(parse_cidr(value))
        if canonical not in result:
            result.append(canonical)
    if len(result) > MAX_CIDRS:
        raise InvalidArgument(f"at most {MAX_CIDRS} entries")
    return tuple(result)


def within(inner: Network, outer: Sequence[Network]) -> bool:
    """True when ``inner`` lies entirely inside one of ``outer``."""
    return any(
        inner.version == net.version and inner.subnet_of(net)  # type: ignore[arg-type]
        for net in outer
    )


def address_allowed(address: Address | None, cidrs: Sequence[Network]) -> bool:
    """True when no CIDR lock is set, or the address lies in one of the networks."""
    if not cidrs:
        return True
    if address is None:
        return False
    return any(address in network for network in cidrs)


def source_address(
    peer: str | None,
    forwarded_for: Sequence[str],
    trusted: Sequence[Network],
) -> Address | None:
    """The request's source: the TCP peer, or the right-most untrusted ``X-Forwarded-For`` hop.

    ``X-Forwarded-For`` is consulted only when the peer is a trusted proxy. A
    malformed hop makes the source unknown (None), which no CIDR lock admits.
    """
    address = parse_address(peer) if peer else None
    if address is None or not trusted or not _in_any(address, trusted):
        return address
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        hop_address = parse_address(hop)
        if hop_address is None:
            return None
        if not _in_any(hop_address, trusted):
            return hop_address
        address = hop_address
    # Every hop is a trusted proxy: the left-most one is as close to the client as we know.
    return address


def _in_any(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)
