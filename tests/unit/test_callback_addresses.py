"""The SSRF rule of shared/callbacks.py on literal addresses: an IPv6 address that leads to an IPv4
address (mapped, 6to4, NAT64, IPv4-compatible, SIIT) is judged by that IPv4 address."""
from __future__ import annotations

import pytest

from shared.callbacks import url_problem

REFUSED = [
    "http://127.0.0.1/hook", "http://[::1]/hook", "http://[::]/hook", "http://[::ffff:127.0.0.1]/hook",
    "http://[::127.0.0.1]/hook",            # IPv4-compatible
    "http://[::a9fe:a9fe]/latest/meta-data",  # IPv4-compatible 169.254.169.254
    "http://[64:ff9b::7f00:1]/hook",        # NAT64 well-known prefix -> 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/hook",     # NAT64 -> 169.254.169.254 (cloud metadata)
    "http://[64:ff9b::a00:1]/hook",         # NAT64 -> 10.0.0.1
    "http://[64:ff9b:1::a9fe:a9fe]/hook",   # NAT64 local-use prefix
    "http://[2002:7f00:1::1]/hook",         # 6to4 -> 127.0.0.1
    "http://[2002:a9fe:a9fe::1]/hook",      # 6to4 -> 169.254.169.254
    "http://[::ffff:0:7f00:1]/hook",        # SIIT IPv4-translated -> 127.0.0.1
]
ALLOWED = [
    "http://8.8.8.8/hook", "http://[2001:4860:4860::8888]/hook", "http://[::ffff:8.8.8.8]/hook",
    "http://[64:ff9b::808:808]/hook",       # NAT64 of a public address: an IPv6-only network reaching 8.8.8.8
    "http://[2002:808:808::1]/hook",        # 6to4 of a public address
]


@pytest.mark.parametrize("url", REFUSED)
async def test_internal_addresses_are_refused_however_written(url):
    problem = await url_problem(url, (), field="callback_url")
    assert problem is not None and "loopback, private or reserved" in problem, (url, problem)


@pytest.mark.parametrize("url", ALLOWED)
async def test_public_addresses_are_allowed(url):
    assert await url_problem(url, (), field="callback_url") is None, url
