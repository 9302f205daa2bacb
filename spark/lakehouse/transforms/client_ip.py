"""What counts as a client's IP address, and its one canonical text (pure Python, no Spark:
the IP collector of `lakehouse serve` and silver's parse of its records share it).

`ipaddress` parses both families exactly; on top of it: an IPv4 address written as
IPv4-mapped IPv6 (`::ffff:8.8.8.8`, what a dual-stack socket reports for an IPv4 peer) is
that IPv4 address, so one visitor is one IP; and addresses that no client sends from are
refused, each with its reason: the unspecified address (`0.0.0.0`, `::`), multicast
(`224.0.0.0/4`, `ff00::/8`) and the IPv4 limited broadcast (`255.255.255.255`).
"""

from __future__ import annotations

import ipaddress


class NotAClientIp(ValueError):
    """An IP address that is no client's: `code` for metrics, the message for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def client_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The canonical text of a parsed client address (IPv4-mapped IPv6 as IPv4), or
    NotAClientIp saying why no client has it."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        raise NotAClientIp("unspecified", f"{address.compressed} is the unspecified address, not a client's")
    if address.is_multicast:
        raise NotAClientIp("multicast", f"{address.compressed} is a multicast address, not a client's")
    if address == ipaddress.IPv4Address("255.255.255.255"):
        raise NotAClientIp("broadcast", "255.255.255.255 is the broadcast address, not a client's")
    return address.compressed
