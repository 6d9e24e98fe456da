"""The health endpoints, served by every gateway as well as by the health service (shared/health.py
has the checks). Superusers also get why a check failed."""
from __future__ import annotations

from aiohttp import web

from shared import health
from shared.callers import is_superuser_caller

from .credentials import SESSION_COOKIE
from .v2.base import GATEWAY


def context(gw) -> health.HealthContext:
    return health.HealthContext(gw.config, gw.pool, gw.bus, gw.locations,
                                signing_kid=lambda: gw.keys.current.kid if gw.keys.current else None, served_by="gateway")


def handler(kind: str):
    async def handle(request: web.Request) -> web.Response:
        gw = request.app[GATEWAY]
        show = await is_superuser_caller(gw.pool, gw.config, gw.public_keys, authorization=request.headers.get("Authorization", ""),
                                         session=request.cookies.get(SESSION_COOKIE))
        payload, status = await health.evaluate(context(gw), kind, show_failures=show)
        return web.Response(body=payload, status=status, content_type="application/json", headers={"Cache-Control": "no-store"})

    return handle


def add_routes(app: web.Application) -> None:
    for path, kind in health.PATHS.items():
        app.router.add_get(path, handler(kind))
