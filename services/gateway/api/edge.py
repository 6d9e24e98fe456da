"""The edge of /api/v1: every request is checked here, in one place, before a handler sees it, so
bad input is a Quay-shaped 400 (or 413) and never reaches PostgreSQL or the date and number code
as something that makes it fail.

- Bodies: refused with 413 when Content-Length says they are larger than MERIDIAN_API_MAX_BODY_BYTES,
  and read at most that far when it does not (chunked), so a huge body never sits in memory.
- JSON: objects only; nested at most MAX_JSON_DEPTH deep; no NaN or Infinity; integers within 64 bits;
  no NUL character or lone surrogate in any key or string.
- Credential headers (Authorization, Cookie, X-CSRF-Token): no NUL or invalid UTF-8.
- Path and query: no NUL or lone surrogate; path parameters at most MAX_PARAMETER_LENGTH characters,
  query values at most MAX_QUERY_LENGTH; integer query parameters within the range their OpenAPI
  schema declares (and 64 bits).
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from shared.errors import ApiError

from ..state import gateway

MAX_JSON_DEPTH = 64
MAX_PARAMETER_LENGTH = 255
MAX_QUERY_LENGTH = 4096
INT64 = (-(2**63), 2**63 - 1)
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")


def text_problem(value: str) -> str | None:
    """Why a string cannot be taken (a NUL character or a lone surrogate), or None."""
    found = _BAD_TEXT.search(value)
    if found is None:
        return None
    return "NUL characters" if found.group() == "\x00" else "lone surrogates (invalid Unicode)"


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than this API accepts ({limit} bytes, MERIDIAN_API_MAX_BODY_BYTES)",
                    error_type="request_too_large", detail={"max_bytes": limit})


def body_limit(request: web.Request) -> int:
    return gateway(request).config.meridian_api_max_body_bytes


def check_declared_length(request: web.Request) -> None:
    """413 at once when the declared length is over the limit: nothing of the body is read."""
    limit = body_limit(request)
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)


async def read_body(request: web.Request) -> bytes:
    """The body, read no further than the limit (a chunked body declares no length)."""
    check_declared_length(request)
    limit = body_limit(request)
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def _reject_constant(name: str) -> Any:
    raise ApiError(400, f"malformed JSON body: {name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """A JSON document checked as the module docstring says."""
    try:
        doc = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, f"the JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    except (ValueError, UnicodeDecodeError) as exc:  # ValueError: also an integer of more than 4300 digits
        raise ApiError(400, f"malformed JSON body: {exc}") from None
    check_json(doc)
    return doc


def check_json(doc: Any) -> None:
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ApiError(400, f"the JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels)")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and (problem := text_problem(key)):
                    raise ApiError(400, f"the JSON body must not contain {problem} (in a key)")
                stack.append((item, depth + 1))
        elif isinstance(value, str):
            if problem := text_problem(value):
                raise ApiError(400, f"the JSON body must not contain {problem}")
        elif isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
            raise ApiError(400, f"the JSON body holds a number out of range ({str(value)[:30]}...): integers must fit in 64 bits")


# The headers the API reads credentials from; aiohttp hands over invalid UTF-8 as lone surrogates.
CREDENTIAL_HEADERS = ("Authorization", "Cookie", "X-CSRF-Token")


def check_headers(request: web.Request) -> None:
    for name in CREDENTIAL_HEADERS:
        for value in request.headers.getall(name, ()):
            if problem := text_problem(value):
                raise ApiError(400, f"the {name} header must not contain {problem}")


def check_path(path: str, params: Mapping[str, str | None]) -> None:
    if problem := text_problem(path):
        raise ApiError(400, f"the path must not contain {problem}")
    for name, value in params.items():
        if value is not None and len(value) > MAX_PARAMETER_LENGTH:
            raise ApiError(400, f"{name} is longer than {MAX_PARAMETER_LENGTH} characters")


def check_query(request: web.Request, declared: Mapping[str, dict]) -> None:
    for name, value in request.query.items():
        for text, what in ((name, "query parameter names"), (value, f"query parameter {name!r}")):
            if problem := text_problem(text):
                raise ApiError(400, f"{what} must not contain {problem}")
        if len(value) > MAX_QUERY_LENGTH:
            raise ApiError(400, f"query parameter {name!r} is longer than {MAX_QUERY_LENGTH} characters")
        schema = declared.get(name)
        if schema and schema.get("type") == "integer" and _INTEGER.match(value.strip()):
            low = max(schema.get("minimum", INT64[0]), INT64[0])
            high = min(schema.get("maximum", INT64[1]), INT64[1])
            if not low <= int(value) <= high:
                raise ApiError(400, f"{name} must be a whole number from {low} to {high}")
