"""Addresses the checker vouches for: endpoint IPs and MACs, P4Runtime ``HOST:PORT``.

Each function says why a value is unusable (or returns None), so the topology check turns
the answer into a diagnostic at the attribute. A value that passes is safe to print in
every generated text (no spaces, quotes or shell metacharacters can pass).
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address

from ..ir.values import MacAddress

__all__ = ["endpoint_ip_problem", "endpoint_mac_problem", "hostport_problem", "text_problem"]

# Ranges an endpoint cannot have: packets to or from them are not forwarded (RFC 6890).
_UNUSABLE = (
    (IPv4Network("0.0.0.0/8"), "is \"this network\" (0.0.0.0/8), the address of no host"),
    (IPv4Network("127.0.0.0/8"), "is a loopback address (127.0.0.0/8): it never leaves "
                                 "the host"),
    (IPv4Network("224.0.0.0/4"), "is a multicast group (224.0.0.0/4), not a host"),
    (IPv4Network("240.0.0.0/4"), "is reserved (240.0.0.0/4) or the broadcast address"),
)

_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")


def endpoint_ip_problem(ip: IPv4Address) -> str | None:
    for net, why in _UNUSABLE:
        if ip in net:
            return f"{ip} {why}"
    return None


def endpoint_mac_problem(mac: MacAddress) -> str | None:
    if mac.as_int == 0:
        return f"{mac} is the all-zero MAC address"
    if mac.as_int >> 40 & 1:
        return f"{mac} is a {'broadcast' if mac.as_int == 2**48 - 1 else 'multicast'} " \
               "MAC address (the first octet is odd), not a host's"
    return None


def _host_problem(host: str) -> str | None:
    if host.startswith("[") and host.endswith("]"):
        try:
            IPv6Address(host[1:-1])
        except ValueError:
            return f"{host} is not an IPv6 address in brackets"
        return None
    if re.fullmatch(r"[0-9.]+", host):
        try:
            IPv4Address(host)
        except ValueError:
            return f"{host} is not an IPv4 address"
        return None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return f"{host!r} is neither an IPv4 address, a [IPv6] address nor a host name"
    return None


def hostport_problem(text: str) -> str | None:
    """Why ``text`` is not ``HOST:PORT`` (an IPv4 address, ``[IPv6]`` or a DNS name, and a
    port 1..65535), or None."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        return f"{text!r} is not HOST:PORT"
    problem = _host_problem(host)
    if problem is not None:
        return problem
    if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        return f"port {port!r} is not a number from 1 to 65535"
    return None


def text_problem(text: str, limit: int = 255) -> str | None:
    """Why ``text`` cannot be a name in a cloud (``clouds.yaml`` cloud, Glance image): it
    must be one printable line."""
    if not text.strip():
        return "it is empty"
    if len(text) > limit:
        return f"it is longer than {limit} characters"
    bad = next((c for c in text if not c.isprintable()), None)
    if bad is not None:
        return f"it contains the control character {bad!r}"
    return None
