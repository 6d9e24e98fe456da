"""The /api/v1 surface as one table (each resource module contributes its routes); one dispatcher
serves it and the OpenAPI document is generated from the same table. Errors are JSON in Quay's shape
(shared.errors.ApiError)."""
from __future__ import annotations

from aiohttp import web

from shared.errors import READ_ONLY_MESSAGE, ApiError, RegistryError
from shared.model import accounts

from ..v2.base import ROUTE, gateway
from . import (
    browse,
    directory,
    edge,
    logs,
    notifications,
    organizations,
    permissions,
    prototypes,
    quotas,
    replication,
    repositories,
    robots,
    search,
    servicekeys,
    superuser,
    tags,
    teams,
    users,
)
from .base import WRITE_METHODS, ApiRoute, Op
from .openapi import document

# Sub-resources first: `repository/ns/app/logs` is the logs of ns/app, not a repository "ns/app/logs".
API_ROUTES: list[ApiRoute] = [
    *browse.ROUTES,
    *directory.ROUTES,
    *search.ROUTES,
    *superuser.ROUTES,
    *users.ROUTES,
    *servicekeys.ROUTES,
    *organizations.ROUTES,
    *teams.ROUTES,
    *robots.ROUTES,
    *prototypes.ROUTES,
    *permissions.ROUTES,
    *logs.ROUTES,
    *quotas.ROUTES,
    *notifications.ROUTES,
    *tags.ROUTES,
    *replication.ROUTES,
    *repositories.ROUTES[::-1],
]

# Reads that sign-in, token issue and health need keep working in read-only mode; so does sign-in.
READ_ONLY_EXEMPT = frozenset({"signin", "signout"})


async def discovery(request: web.Request) -> web.Response:
    gw = gateway(request)
    return web.json_response(document(API_ROUTES, gw.config))


API_ROUTES.append(ApiRoute("discovery", "/discovery", {"GET": Op(discovery, "This OpenAPI document", auth="none")}))


def _error_response(exc: ApiError, headers=None) -> web.Response:
    return web.Response(status=exc.status, body=exc.body(), content_type="application/json",
                        headers={**exc.headers, **(headers or {})})


async def dispatch(request: web.Request) -> web.StreamResponse:
    path = request.match_info.get("tail", "")
    try:
        edge.check_declared_length(request)  # before anything else, even for a path that does not exist
        edge.check_path(path, {})
        edge.check_headers(request)
        for route in API_ROUTES:
            found = route.pattern.fullmatch(path)
            if not found:
                continue
            request[ROUTE] = f"api:{route.name}"
            op = route.ops.get(request.method)
            if op is None:
                allowed = ", ".join(sorted(route.ops))
                raise ApiError(405, f"{request.method} is not supported on /api/v1/{path}; use {allowed}",
                               error_type="method_not_allowed")
            if request.method in WRITE_METHODS and gateway(request).switches.writes.read_only and route.name not in READ_ONLY_EXEMPT:
                raise ApiError(405, READ_ONLY_MESSAGE, error_type="read_only", detail={"is_readonly": True})
            params = found.groupdict()
            edge.check_path(path, params)
            edge.check_query(request, op.query)
            return await op.handler(request, **params)
        raise ApiError(404, f"no API endpoint /api/v1/{path}; GET /api/v1/discovery lists them", error_type="not_found")
    except accounts.NameTaken as exc:  # a name users, organisations and robots share
        return _error_response(ApiError(409, str(exc), error_type="conflict"))
    except RegistryError as exc:  # from shared helpers: answer in the API's JSON shape
        return _error_response(ApiError(exc.status, exc.message, error_type=exc.code.lower()), exc.headers)
    except ApiError as exc:
        return _error_response(exc)
