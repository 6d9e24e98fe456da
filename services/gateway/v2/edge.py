"""Edge validation of every /v2 request, in one place (issue 11, "zero 5xx from bad input").

`check_request` runs in the dispatcher before any route: the path, every query parameter and every
header must be text PostgreSQL and the handlers can take (no NUL, no lone surrogate: aiohttp decodes
invalid UTF-8 in a header to lone surrogates), within length bounds, and the count parameter `n` a
number that fits a 64-bit column. A request that fails gets 400 with an OCI error body naming what was
wrong, and changes nothing. Handlers keep their own semantic checks (names, digests, tags, manifests);
the numeric headers are bounded to 19 digits where they are parsed (base.content_length, the upload
Content-Range, shared/http_range.py). `text_problem` is the one test of "usable text" they share
(manifest annotations, image-config labels, Basic credentials). A NUL inside a raw header never gets
here: aiohttp's HTTP parser refuses it with its own 400.
"""
from __future__ import annotations

import re

from aiohttp import web

from shared.errors import RegistryError

MAX_PATH = 4096  # characters of the path after /v2/ (a name is at most 255, a digest about 140)
MAX_QUERY_VALUE = 4096
MAX_QUERY_PARAMS = 256  # scopes of /v2/auth and ?tag= of a manifest push repeat; aiohttp caps the line at 8190
INT64_MAX = (1 << 63) - 1
# Numbers: digits only, at most 19 of them (anything longer cannot fit a bigint).
_DIGITS = re.compile(r"[0-9]{1,19}")
# Query parameters that are counts.
NUMERIC_PARAMS = ("n",)


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored or compared as text (None when it can): NUL, which PostgreSQL text
    refuses, or a lone surrogate, which is not encodable as UTF-8."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid UTF-8)"
    return None


def storable(value: str) -> str:
    """`value` made storable for the record (logs, the usage log): NUL written as \\x00, a lone
    surrogate as "?"."""
    return value.replace("\x00", "\\x00").encode("utf-8", "replace").decode("utf-8")


def bad_request(what: str, problem: str) -> RegistryError:
    """The one 400 of edge validation: UNSUPPORTED is the distribution spec's code for a request the
    registry cannot take; the message names the part and the reason."""
    return RegistryError("UNSUPPORTED", f"invalid request: {what} {problem}", detail={"field": what}, status=400)


def _check_text(what: str, value: str, limit: int | None = None) -> None:
    problem = text_problem(value)
    if problem is not None:
        raise bad_request(what, problem)
    if limit is not None and len(value) > limit:
        raise bad_request(what, f"is longer than {limit} characters")


def check_int(what: str, raw: str, *, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    """A decimal integer within [minimum, maximum], else 400."""
    if not _DIGITS.fullmatch(raw.strip()):
        raise bad_request(what, f"must be a non-negative integer of at most 19 digits, got {raw[:40]!r}")
    value = int(raw.strip())
    if not minimum <= value <= maximum:
        raise bad_request(what, f"must be between {minimum} and {maximum}, got {value}")
    return value


def check_request(request: web.Request) -> None:
    _check_text("path", request.path, MAX_PATH)
    _check_text("query string", request.query_string, MAX_QUERY_VALUE * 4)
    if len(request.query) > MAX_QUERY_PARAMS:
        raise bad_request("query string", f"has more than {MAX_QUERY_PARAMS} parameters")
    for key, value in request.query.items():
        _check_text(f"query parameter name {key[:40]!r}", key, 256)
        _check_text(f"query parameter {key!r}", value, MAX_QUERY_VALUE)
        if key in NUMERIC_PARAMS and value != "":
            check_int(f"query parameter {key!r}", value)
    for key, value in request.headers.items():
        _check_text("header name", key)
        _check_text(f"header {key}", value)
