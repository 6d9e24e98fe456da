"""The /api/v1 surface as a table; errors are JSON (shared.errors.ApiError) in Quay's shape."""
from __future__ import annotations

import re

from aiohttp import web

from shared.errors import READ_ONLY_MESSAGE, ApiError, RegistryError

from ..v2.base import ROUTE, gateway
from . import replication

REPO = r"(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+?)"
NAMESPACE = r"(?P<namespace>[a-z0-9]+(?:[._-][a-z0-9]+)*)"

API_ROUTES: list[tuple[str, re.Pattern, dict]] = [
    ("namespace_replication", re.compile(rf"organization/{NAMESPACE}/replication"),
     {"GET": replication.get_namespace_replication, "PUT": replication.put_namespace_replication}),
    ("manifest_replication", re.compile(rf"repository/{REPO}/manifest/(?P<digest>[^/]+)/replication"),
     {"GET": replication.manifest_replication}),
]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def dispatch(request: web.Request) -> web.StreamResponse:
    path = request.match_info.get("tail", "")
    try:
        for name, pattern, methods in API_ROUTES:
            found = pattern.fullmatch(path)
            if not found:
                continue
            request[ROUTE] = f"api:{name}"
            handler = methods.get(request.method)
            if handler is None:
                raise ApiError(405, f"{request.method} is not supported on /api/v1/{path}", error_type="method_not_allowed")
            if request.method in WRITE_METHODS and gateway(request).read_only:
                raise ApiError(405, READ_ONLY_MESSAGE, error_type="read_only", detail={"is_readonly": True})
            return await handler(request, **found.groupdict())
        raise ApiError(404, f"no API endpoint /api/v1/{path}", error_type="not_found")
    except RegistryError as exc:  # from the authorisation seam: answer in the API's JSON shape
        api = ApiError(exc.status, exc.message, error_type=exc.code.lower())
        return web.Response(status=api.status, body=api.body(), content_type="application/json", headers=exc.headers)
    except ApiError as exc:
        return web.Response(status=exc.status, body=exc.body(), content_type="application/json")
