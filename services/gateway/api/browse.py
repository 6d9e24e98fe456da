"""What the web UI reads in one call per page: the session (user, CSRF token, where they may create
repositories), repositories and live tags paged, sorted and filtered on the server with the columns
the tables show (size, last modified, regions holding each tag, platforms, referrers), one manifest's
layers, platforms and referrers grouped by artifact type, and the registry's storage locations."""
from __future__ import annotations

import json
from collections.abc import Collection

from aiohttp import web

from shared.callers import api_caller
from shared.digest import InvalidDigest, parse_digest
from shared.errors import ApiError
from shared.model import access as access_model
from shared.model import browse as browse_model

from ..credentials import SESSION_COOKIE
from ..state import gateway
from .base import ApiRoute, Op, caller, iso, ok, repository_for, sees_everything, signed_in

MAX_FILTER = 256


def paging(query) -> tuple[int, int, int]:
    try:
        limit = int(query.get("limit", "25"))
        page = int(query.get("page", "1"))
    except ValueError:
        raise ApiError(400, "limit and page must be whole numbers") from None
    if not 1 <= limit <= 100 or not 1 <= page <= 1_000_000:
        raise ApiError(400, "limit must be from 1 to 100 and page from 1 to 1000000")
    return limit, page, (page - 1) * limit


def sorting(query, allowed: Collection[str], default: str) -> tuple[str, bool]:
    sort = query.get("sort", default)
    if sort not in allowed:
        raise ApiError(400, f"sort must be one of {', '.join(allowed)}")
    order = query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "order must be asc or desc")
    return sort, order == "desc"


def name_filter(query) -> tuple[str | None, bool]:
    text = query.get("filter") or None
    if text is not None and len(text) > MAX_FILTER:
        raise ApiError(400, f"filter is longer than {MAX_FILTER} characters")
    if text is not None and "\x00" in text:
        raise ApiError(400, "filter must not contain NUL characters")
    regex = query.get("regex", "false").lower()
    if regex not in ("true", "false"):
        raise ApiError(400, "regex must be true or false")
    return text, regex == "true"


async def session(request: web.Request) -> web.Response:
    """The signed-in user and the CSRF token their session needs for changes (null when anonymous).
    Cross-site pages cannot read it (no CORS), as with Quay's GET /csrf_token."""
    gw = gateway(request)
    principal = await caller(request)
    if principal is None:
        response = ok({"user": None, "csrf_token": None, "anonymous_access": gw.config.feature_anonymous_access,
                       "session_ended": SESSION_COOKIE in request.cookies})
        if SESSION_COOKIE in request.cookies:  # expired or signed out elsewhere: browse on anonymously
            response.del_cookie(SESSION_COOKIE, path="/")
        return response
    csrf = None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and "Authorization" not in request.headers:
        found = await api_caller(gw.pool, gw.config, gw.public_keys, authorization="", session=cookie)
        csrf = found.csrf_token if found else None
    namespaces = await browse_model.creatable_namespaces(gw.pool, principal)
    return ok({
        "user": {"username": principal.username, "super_user": principal.superuser, "is_robot": principal.robot,
                 "creatable_namespaces": namespaces},
        "csrf_token": csrf, "anonymous_access": gw.config.feature_anonymous_access,
    })


async def repositories(request: web.Request) -> web.Response:
    gw = gateway(request)
    principal = await caller(request)
    query = request.query
    limit, page, offset = paging(query)
    sort, descending = sorting(query, browse_model.REPOSITORY_SORTS, "name")
    text, regex = name_filter(query)
    public_only = query.get("public", "false").lower() == "true"
    namespace = query.get("namespace") or None
    if namespace is not None and "\x00" in namespace:
        raise ApiError(400, "namespace must not contain NUL characters")
    try:
        everything = await sees_everything(request)
        rows, total = await browse_model.repositories_page(
            gw.pool, principal, text=text, regex=regex, namespace=namespace, public_only=public_only,
            sort=sort, descending=descending, limit=limit, offset=offset, sees_all=everything)
    except browse_model.BadFilter as exc:
        raise ApiError(400, str(exc)) from None
    items = []
    for row in rows:
        role = "admin" if everything else access_model.role_name(row["rank"])
        items.append({
            "namespace": row["namespace"], "name": row["name"], "is_public": row["visibility"] == "public",
            "state": "READ_ONLY" if row["state"] == "readonly" else "NORMAL", "description": row["description"],
            "last_modified": iso(row["last_modified"]), "size": row["size"],
            "can_write": access_model.RANK[role] >= 2, "can_admin": access_model.RANK[role] >= 3,
        })
    return ok({"repositories": items, "total": total, "page": page, "limit": limit,
               "has_additional": offset + len(items) < total})


def _platforms(body: bytes) -> list[dict]:
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    result = []
    for entry in doc.get("manifests") or []:
        if not isinstance(entry, dict):
            continue
        found = entry.get("platform")
        platform: dict = found if isinstance(found, dict) else {}
        result.append({"digest": entry.get("digest"), "size": entry.get("size"), "media_type": entry.get("mediaType"),
                       "os": platform.get("os"), "architecture": platform.get("architecture"),
                       "variant": platform.get("variant"), "artifact_type": entry.get("artifactType"),
                       "annotations": entry.get("annotations") if isinstance(entry.get("annotations"), dict) else None})
    return result


async def tags(request: web.Request, repository: str) -> web.Response:
    gw = gateway(request)
    repo, role = await repository_for(request, repository, "read")
    query = request.query
    limit, page, offset = paging(query)
    sort, descending = sorting(query, browse_model.TAG_SORTS, "name")
    text, regex = name_filter(query)
    async with gw.pool.acquire() as conn:
        try:
            rows, total = await browse_model.tags_page(conn, repo["id"], text=text, regex=regex, sort=sort,
                                                       descending=descending, limit=limit, offset=offset)
        except browse_model.BadFilter as exc:
            raise ApiError(400, str(exc)) from None
        manifest_ids = sorted({r["manifest_id"] for r in rows})
        extras = await browse_model.manifest_extras(conn, manifest_ids)
        locations = await browse_model.location_names(conn)
        lists = [r["manifest_id"] for r in rows if r["media_type"] in browse_model.INDEX_TYPES]
        bodies = await browse_model.manifest_bodies(conn, sorted(set(lists)))
        referrers = await browse_model.referrer_counts(conn, repo["id"], sorted({r["digest"] for r in rows}))
    items = []
    for row in rows:
        extra = extras.get(row["manifest_id"], {})
        items.append({
            "name": row["name"], "manifest_digest": row["digest"], "media_type": row["media_type"],
            "is_manifest_list": row["media_type"] in browse_model.INDEX_TYPES,
            "artifact_type": row["artifact_type"], "size": extra.get("size"),
            "last_modified": iso(row["lifetime_start"]), "expiration": iso(row["expires_at"]),
            "regions": browse_model.regions_holding(extra, locations),
            "platforms": _platforms(bodies[row["manifest_id"]]) if row["manifest_id"] in bodies else [],
            "referrers": referrers.get(row["digest"], {}),
            "security": {"status": "not_scanned"},
        })
    return ok({"tags": items, "total": total, "page": page, "limit": limit, "has_additional": offset + len(items) < total,
               "can_write": access_model.RANK[role] >= 2, "locations": locations})


async def manifest(request: web.Request, repository: str, digest: str) -> web.Response:
    gw = gateway(request)
    repo, _ = await repository_for(request, repository, "read")
    try:
        digest = parse_digest(digest)
    except InvalidDigest as exc:
        raise ApiError(400, f"digest: {exc}") from None
    async with gw.pool.acquire() as conn:
        row = await browse_model.manifest_row(conn, repo["id"], digest)
        if row is None:
            raise ApiError(404, f"manifest {digest} not found in {repository}", error_type="not_found")
        extras = await browse_model.manifest_extras(conn, [row["id"]])
        locations = await browse_model.location_names(conn)
        referrer_rows = await browse_model.referrers(conn, repo["id"], digest)
        tag_names = await browse_model.tags_of_manifest(conn, row["id"])
    try:
        doc = json.loads(bytes(row["body"]))
    except ValueError:
        doc = {}
    layers = [{"digest": layer.get("digest"), "size": layer.get("size"), "media_type": layer.get("mediaType"),
               "annotations": layer.get("annotations") if isinstance(layer.get("annotations"), dict) else None}
              for layer in doc.get("layers") or [] if isinstance(layer, dict)]
    config = doc.get("config") if isinstance(doc.get("config"), dict) else None
    groups: dict[str, list] = {}
    for ref in referrer_rows:
        annotations = ref["annotations"]
        if isinstance(annotations, str):
            annotations = json.loads(annotations)
        groups.setdefault(ref["artifact_type"], []).append({
            "digest": ref["digest"], "media_type": ref["media_type"], "size": ref["size"], "created": iso(ref["created_at"]),
            "annotations": annotations, "tags": list(ref["tags"] or []),
        })
    annotations = row["annotations"]
    if isinstance(annotations, str):
        annotations = json.loads(annotations)
    extra = extras.get(row["id"], {})
    return ok({
        "digest": row["digest"], "media_type": row["media_type"], "artifact_type": row["artifact_type"],
        "config_media_type": row["config_media_type"], "subject_digest": row["subject_digest"],
        "is_manifest_list": row["media_type"] in browse_model.INDEX_TYPES, "created": iso(row["created_at"]),
        "size": extra.get("size"), "manifest_size": row["size"], "annotations": annotations,
        "config": {"digest": config.get("digest"), "size": config.get("size"), "media_type": config.get("mediaType")} if config else None,
        "layers": layers, "platforms": _platforms(bytes(row["body"])) if row["media_type"] in browse_model.INDEX_TYPES else [],
        "regions": browse_model.regions_holding(extra, locations), "locations": locations, "tags": tag_names,
        "referrers": [{"artifact_type": kind, "manifests": items} for kind, items in sorted(groups.items())],
    })


async def locations(request: web.Request) -> web.Response:
    gw = gateway(request)
    await signed_in(request)
    return ok({"locations": sorted(gw.location_ids), "write_location": gw.write_location,
               "default_locations": list(gw.config.distributed_storage_default_locations),
               "replication_enabled": gw.switches.replication.enabled})


PAGE_QUERY: dict[str, dict] = {"limit": {"type": "integer", "minimum": 1, "maximum": 100},
              "page": {"type": "integer", "minimum": 1, "maximum": 1000000},
              "order": {"type": "string", "enum": ["asc", "desc"]}, "filter": {"type": "string", "maxLength": MAX_FILTER},
              "regex": {"type": "string", "enum": ["true", "false"]}}
ROUTES = [
    ApiRoute("session", "/session", {
        "GET": Op(session, "The signed-in user, the session's CSRF token and where the user may create repositories "
                           "(user null when anonymous)", auth="optional"),
    }),
    ApiRoute("browse_repositories", "/browse/repositories", {
        "GET": Op(repositories, "Repositories you may read, with size and last modified; filtered (substring or regex), "
                                "sorted and paged on the server, with the total", auth="optional",
                  query={**PAGE_QUERY, "sort": {"type": "string", "enum": list(browse_model.REPOSITORY_SORTS)},
                         "namespace": {"type": "string"}, "public": {"type": "string", "enum": ["true", "false"]}}),
    }),
    ApiRoute("browse_tags", "/browse/repository/{repository}/tags", {
        "GET": Op(tags, "Live tags with size, regions holding every blob, platforms of manifest lists and referrer counts; "
                        "filtered (substring or regex), sorted and paged on the server, with the total", auth="optional",
                  query={**PAGE_QUERY, "sort": {"type": "string", "enum": list(browse_model.TAG_SORTS)}}),
    }),
    ApiRoute("browse_manifest", "/browse/repository/{repository}/manifest/{digest}", {
        "GET": Op(manifest, "A manifest: layers, platforms, regions holding it and its referrers grouped by artifact type",
                  auth="optional"),
    }),
    ApiRoute("browse_locations", "/browse/locations", {
        "GET": Op(locations, "The registry's storage locations (for replication settings)"),
    }),
]
