"""The single-range `Range` header the gateway and the blobstore serve (shared/http_range.py)."""
from __future__ import annotations

import pytest

from shared.http_range import RangeNotSatisfiable, parse_range

SERVED = [
    # (header, object size, (start, length, Content-Range))
    (None, 100, (0, 100, None)),
    ("", 100, (0, 100, None)),
    (None, 0, (0, 0, None)),
    ("bytes=0-9", 100, (0, 10, "bytes 0-9/100")),
    ("bytes=0-0", 100, (0, 1, "bytes 0-0/100")),
    ("bytes=99-99", 100, (99, 1, "bytes 99-99/100")),
    ("bytes=90-", 100, (90, 10, "bytes 90-99/100")),
    ("bytes=0-", 100, (0, 100, "bytes 0-99/100")),
    ("bytes=95-200", 100, (95, 5, "bytes 95-99/100")),  # the end is clipped to the object
    ("bytes=-10", 100, (90, 10, "bytes 90-99/100")),  # the last 10 bytes
    ("bytes=-200", 100, (0, 100, "bytes 0-99/100")),  # a suffix longer than the object is all of it
    ("  bytes=10-19 ", 100, (10, 10, "bytes 10-19/100")),
    ("bytes=0-0", 1, (0, 1, "bytes 0-0/1")),
]


@pytest.mark.parametrize("header, size, expected", SERVED)
def test_served(header, size, expected):
    assert parse_range(header, size) == expected


REFUSED = [
    # (header, object size)
    ("bytes=", 100),
    ("bytes=-", 100),
    ("bytes=10-5", 100),  # end before start
    ("bytes=100-", 100),  # starts past the end
    ("bytes=100-200", 100),
    ("bytes=-0", 100),  # an empty suffix
    ("bytes=0-", 0),  # nothing to serve in an empty object
    ("bytes=0-1,5-6", 100),  # several ranges: not served
    ("items=0-9", 100),
    ("bytes=a-b", 100),
    ("bytes=1.5-2", 100),
    ("bytes 0-9", 100),
    ("bytes=+1-2", 100),
]


@pytest.mark.parametrize("header, size", REFUSED)
def test_refused(header, size):
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, size)
    assert repr(header) in str(caught.value)  # the answer names what the client sent
