"""PROXY_COUNT's rule (werkzeug's ProxyFix x_for=N): the N-th X-Forwarded-For entry from the right,
over every X-Forwarded-For header joined in order; None (the socket peer stands) when there are fewer
entries or the entry is not an IP address."""
from __future__ import annotations

import pytest

from services.gateway.forwarded import forwarded_address


@pytest.mark.parametrize("values, count, expected", [
    (["203.0.113.7"], 1, "203.0.113.7"),
    (["198.51.100.1, 203.0.113.7"], 1, "203.0.113.7"),
    (["198.51.100.1, 203.0.113.7"], 2, "198.51.100.1"),
    (["198.51.100.1", "203.0.113.7"], 2, "198.51.100.1"),  # several headers, joined in order
    (["192.0.2.1,198.51.100.1 ,  203.0.113.7 "], 2, "198.51.100.1"),  # entries stripped
    (["2001:DB8:0:0::7"], 1, "2001:db8::7"),  # written as Python writes it
    (["203.0.113.7"], 2, None),  # fewer entries than proxies
    (["203.0.113.7"], 0, None),  # PROXY_COUNT 0: never trusted
    ([], 1, None),
    (["not-an-ip"], 1, None),
    (["203.0.113.7, not-an-ip"], 1, None),
    (["203.0.113.7:4711"], 1, None),
    (["203.0.113.7,"], 1, None),
    (["not-an-ip, 203.0.113.7"], 1, "203.0.113.7"),  # untrusted entries further left do not matter
])
def test_the_nth_entry_from_the_right_is_the_client(values, count, expected):
    assert forwarded_address(values, count) == expected
