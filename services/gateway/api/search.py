"""One search box for the whole registry: repositories by name, live tags by name and manifests by
digest, only where the caller may read (a private repository of someone else is simply absent, as if
it did not exist). Few results per kind for suggestions as you type; `kind` and `page` for the full
results. SQL in shared/model/search.py."""
from __future__ import annotations

from aiohttp import web

from shared.errors import ApiError
from shared.model import search as search_model

from ..state import gateway
from .base import ApiRoute, Op, caller, iso, ok, sees_everything

KINDS = ("repositories", "tags", "digests")
MAX_QUERY = 128


async def search(request: web.Request) -> web.Response:
    gw = gateway(request)
    principal = await caller(request)
    text = (request.query.get("q") or "").strip()
    if not 1 <= len(text) <= MAX_QUERY or "\x00" in text:
        raise ApiError(400, f"q must be 1 to {MAX_QUERY} characters")
    kind = request.query.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise ApiError(400, f"kind must be one of {', '.join(KINDS)}")
    try:
        limit = int(request.query.get("limit", "5"))
        page = int(request.query.get("page", "1"))
    except ValueError:
        raise ApiError(400, "limit and page must be whole numbers") from None
    if not 1 <= limit <= 100 or not 1 <= page <= 10_000:
        raise ApiError(400, "limit must be from 1 to 100 and page from 1 to 10000")
    offset = (page - 1) * limit
    result: dict = {"query": text, "page": page, "limit": limit, "has_additional": {}}
    everything = await sees_everything(request)
    async with gw.pool.acquire() as conn:
        for name in KINDS:
            if kind is not None and name != kind:
                continue
            rows = await getattr(search_model, name)(conn, principal, text, limit=limit + 1, offset=offset, sees_all=everything)
            result["has_additional"][name] = len(rows) > limit
            result[name] = [_VIEWS[name](r) for r in rows[:limit]]
    return ok(result)


_VIEWS = {
    "repositories": lambda r: {"name": r["full_name"], "namespace": r["namespace"], "short_name": r["name"],
                               "is_public": r["visibility"] == "public", "description": r["description"],
                               "last_modified": iso(r["last_modified"])},
    "tags": lambda r: {"repository": r["repository"], "name": r["name"], "manifest_digest": r["digest"],
                       "last_modified": iso(r["last_modified"])},
    "digests": lambda r: {"repository": r["repository"], "digest": r["digest"], "media_type": r["media_type"],
                          "artifact_type": r["artifact_type"], "created": iso(r["created_at"]), "tags": list(r["tags"])},
}

ROUTES = [
    ApiRoute("search", "/search", {
        "GET": Op(search, "Repositories, tags and digests you may read that match q (name substring, digest prefix); "
                          "a few of each for suggestions, or one kind paged", auth="optional",
                  query={"q": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY},
                         "kind": {"type": "string", "enum": list(KINDS)},
                         "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                         "page": {"type": "integer", "minimum": 1, "maximum": 10000}}),
    }),
]
