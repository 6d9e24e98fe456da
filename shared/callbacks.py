"""Calls to URLs that users give (usage-log export callbacks, notification webhooks and Slack): one
rule against server-side request forgery, and an HTTP client that keeps to it.

The rule: only http(s), and only to public addresses. A host name is resolved and every address it
gives must be global unicast (no loopback, private, link-local, shared, reserved or multicast address),
unless the operator lists the host in MERIDIAN_CALLBACK_ALLOWED_HOSTS. It is checked when the URL is
given (a clear 400) and again at every call: `guarded_session` resolves through `GuardedResolver`,
which drops such addresses at connection time, so a name that resolves elsewhere later (DNS
rebinding) cannot reach the inside either. Redirects are never followed.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

ALLOW_KEY = "MERIDIAN_CALLBACK_ALLOWED_HOSTS"


# IPv6 prefixes that carry an IPv4 address in their last 32 bits and reach it through a translator
# or tunnel: IPv4-compatible (::/96, deprecated), SIIT's IPv4-translated (::ffff:0:0:0/96) and the
# NAT64 well-known prefix (64:ff9b::/96). Python's is_global calls them global whatever they embed.
_IPV4_EMBEDDING = tuple(ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96"))
# NAT64's local-use prefix (RFC 8215): the operator's own translator, never a public address.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (mapped, 6to4, NAT64, ...), or None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if not (address.is_loopback or address.is_unspecified) and any(address in net for net in _IPV4_EMBEDDING):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def _refused_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address when the rule refuses it, else None."""
    address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return address
        address = _embedded_ipv4(address) or address
    if not address.is_global or address.is_multicast:
        return address
    return None


def _why(field: str, host: str, address) -> str:
    return (f"{field} {host!r} resolves to {address}, a loopback, private or reserved address; only public "
            f"addresses are called (operators may allow internal hosts with {ALLOW_KEY})")


async def url_problem(url: str, allowed_hosts: Collection[str], *, field: str = "callback_url") -> str | None:
    """Why `url` must not be called, or None. `field` names the input in the message."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"{field} is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{field} must be an http:// or https:// URL"
    host = parts.hostname
    if host in allowed_hosts:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):  # ValueError: a NUL in the name
        return f"{field} host {host!r} does not resolve"
    for info in infos:
        refused = _refused_address(str(info[4][0]))
        if refused is not None:
            return _why(field, host, refused)
    return None


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then keeps only addresses the rule allows (all of them for allowed hosts)."""

    def __init__(self, allowed_hosts: Collection[str]) -> None:
        self.allowed_hosts = set(allowed_hosts)
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[Any]:
        found = await self._resolver.resolve(host, port, family)
        if host in self.allowed_hosts:
            return found
        kept = [entry for entry in found if _refused_address(entry["host"]) is None]
        if not kept:
            raise OSError(_why("the host", host, found[0]["host"] if found else "nothing"))
        return kept

    async def close(self) -> None:
        await self._resolver.close()


def guarded_session(allowed_hosts: Collection[str], timeout: float, **kwargs: Any) -> aiohttp.ClientSession:
    """An HTTP client for user-given URLs: addresses checked at connect time, a total timeout.
    Callers still check literal IP URLs with `url_problem` (aiohttp does not resolve those)."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allowed_hosts), limit=64, force_close=True)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs)
