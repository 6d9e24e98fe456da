"""The single-range `Range: bytes=...` header, as the gateway and the blobstore both serve it."""
from __future__ import annotations

import re

RANGE_RE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")  # longer numbers cannot be offsets


class RangeNotSatisfiable(ValueError):
    """Malformed or outside the object; answer 416 with `Content-Range: bytes */<size>`."""


def parse_range(header: str | None, size: int) -> tuple[int, int, str | None]:
    """(start, length, Content-Range value or None when the whole object is asked for)."""
    if not header:
        return 0, size, None
    match = RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise RangeNotSatisfiable(f"unsupported Range {header!r}")
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        start, end = max(size - int(last), 0), size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"Range {header!r} not satisfiable")
    return start, end - start + 1, f"bytes {start}-{end}/{size}"
