"""The /v2 API as a table: (methods, path pattern, handler, writes?). One dispatcher serves it.

Repository names contain slashes, so routes are matched here in order rather than by aiohttp's
router; a path that matches no route, or a method a route lacks, still gets an OCI error body.
"""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from shared.errors import RegistryError, pushes_disabled_error, repository_read_only_error
from shared.registry import repositories

from ..auth import Action
from ..state import ROUTE, gateway
from . import blobs, catalog, edge, manifests, referrers, tags, token, uploads

Handler = Callable[..., Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    name: str
    pattern: re.Pattern
    methods: dict[str, Handler]
    writes: frozenset[str] = frozenset({"PUT", "POST", "PATCH", "DELETE"})
    # Text every path of the route contains: a path without it is not tried against the pattern
    # (every request walks this table; most of them are blob and manifest reads).
    marker: str = ""


async def api_version(request: web.Request) -> web.Response:
    gw = gateway(request)
    identity = await gw.authorizer.authenticate(request)
    if not identity.token and gw.switches.access.requires_credentials():
        raise gw.authorizer.challenge()
    return web.json_response({})


# Greedy: what follows the name has no slash, so the split is the same as a lazy match gives, and
# found by backtracking from the end rather than by trying every prefix.
NAME = r"(?P<name>.+)"
# Routes whose writes other than DELETE are pushes (refused under DISABLE_PUSHES).
PUSH_ROUTES = frozenset({"upload_start", "upload", "manifest"})
ROUTES: list[Route] = [
    Route("base", re.compile(r""), {"GET": api_version, "HEAD": api_version}),
    Route("catalog", re.compile(r"_catalog"), {"GET": catalog.catalog}),
    Route("auth", re.compile(r"auth"), {"GET": token.issue}),
    Route("tags", re.compile(rf"{NAME}/tags/list"), {"GET": tags.list_tags}, marker="/tags/list"),
    Route("referrers", re.compile(rf"{NAME}/referrers/(?P<digest>[^/]+)"), {"GET": referrers.list_referrers},
          marker="/referrers/"),
    Route("upload_start", re.compile(rf"{NAME}/blobs/uploads/?"), {"POST": uploads.start_upload}, marker="/blobs/uploads"),
    Route(
        "upload",
        re.compile(rf"{NAME}/blobs/uploads/(?P<upload>[^/]+)"),
        {
            "GET": uploads.upload_status,
            "PATCH": uploads.patch_upload,
            "PUT": uploads.finish_upload,
            "DELETE": uploads.cancel_upload,
        },
        marker="/blobs/uploads/",
    ),
    Route(
        "blob",
        re.compile(rf"{NAME}/blobs/(?P<digest>[^/]+)"),
        {"GET": blobs.get_blob, "HEAD": blobs.head_blob, "DELETE": blobs.delete_blob},
        marker="/blobs/",
    ),
    Route(
        "manifest",
        re.compile(rf"{NAME}/manifests/(?P<reference>[^/]+)"),
        {
            "GET": manifests.get_manifest,
            "HEAD": manifests.head_manifest,
            "PUT": manifests.put_manifest,
            "DELETE": manifests.delete_manifest,
        },
        marker="/manifests/",
    ),
]


def match(path: str) -> tuple[Route, dict[str, str]] | None:
    for route in ROUTES:
        if route.marker not in path:
            continue
        found = route.pattern.fullmatch(path)
        if found:
            return route, found.groupdict()
    return None


async def dispatch(request: web.Request) -> web.StreamResponse:
    edge.check_request(request)  # every /v2 request: usable text, bounded lengths and numbers (400 otherwise)
    found = match(request.match_info.get("tail", ""))
    if found is None:
        raise RegistryError("NAME_UNKNOWN", "no such registry route", detail={"path": request.path}, status=404)
    route, params = found
    request[ROUTE] = route.name
    handler = route.methods.get(request.method)
    if handler is None:
        raise RegistryError("UNSUPPORTED", f"{request.method} is not supported on this route")
    gw = gateway(request)
    if request.method in route.writes:
        gw.switches.writes.refuse_if_read_only()
        if gw.config.disable_pushes and route.name in PUSH_ROUTES and request.method != "DELETE":
            raise pushes_disabled_error()
        if "name" in params and await repositories.is_read_only(gw.pool, params["name"]):
            raise repository_read_only_error(params["name"])
    return await handler(request, **params)


__all__ = ["ROUTES", "Route", "dispatch", "match", "Action"]
