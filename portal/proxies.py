"""The client's address behind reverse proxies, for the sign-in lock-out
(django-axes calls `client_ip` through AXES_CLIENT_IP_CALLABLE).

Each proxy appends the address it received the request from to
X-Forwarded-For (nginx's `$proxy_add_x_forwarded_for`), and the last one is
REMOTE_ADDR. Read from the right, the chain is true as long as it goes through
the proxies we run (TRUSTED_PROXIES); the first address that is not one of
them is the client, and everything to its left is whatever that client sent.
So the client is the right-most untrusted address of X-Forwarded-For +
REMOTE_ADDR: a forged left-most entry neither lets an attacker out of a
lock-out nor locks another address out. Without trusted proxies (not
BEHIND_PROXY), X-Forwarded-For is ignored and the client is REMOTE_ADDR.

django-ipware, axes' optional reader of X-Forwarded-For, is not used: it
expects the proxies' own addresses inside the header, one per hop and in
order, and never counts REMOTE_ADDR as a hop, so behind nginx every request
would either fall back to the proxy's address (everyone locked out together)
or believe the header's left-most entry.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: HttpRequest) -> str | None:
    return client_address(
        request.META.get("REMOTE_ADDR", ""),
        request.META.get("HTTP_X_FORWARDED_FOR", ""),
        trusted_networks(tuple(settings.TRUSTED_PROXIES)),
    )


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """TRUSTED_PROXIES as networks: an address is a network of one."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def client_address(remote_addr: str, forwarded_for: str, trusted: Sequence[Network]) -> str | None:
    """The right-most address of `forwarded_for` + `remote_addr` outside the
    `trusted` networks, or the left-most one if all are trusted.

    A REMOTE_ADDR that is not an IP address is a Unix socket, so a proxy on this
    machine: trusted whenever there are trusted proxies. An entry that cannot be
    read stops the walk at the proxy that forwarded it (a proxy we trust wrote
    it, so this is a misconfigured proxy; its address is the safest key)."""
    peer = parse_address(remote_addr)
    if peer is None:
        if not trusted:
            return remote_addr or None
    elif not is_trusted(peer, trusted):
        return str(peer)
    client = peer
    hops = forwarded_for.split(",") if forwarded_for.strip() else []
    for entry in reversed(hops):
        address = parse_address(entry)
        if address is None:
            break
        client = address
        if not is_trusted(address, trusted):
            break
    return str(client) if client is not None else None


def is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def parse_address(text: str) -> Address | None:
    """An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
    `[2001:db8::1]:443`; IPv4-mapped IPv6 (`::ffff:1.2.3.4`, a dual-stack
    socket's view of an IPv4 client) as plain IPv4. None for anything else."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
