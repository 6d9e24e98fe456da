"""The health endpoints, served by every gateway as well as by the health service (shared/health.py
has the checks). Superusers also get why a check failed."""
from __future__ import annotations

from aiohttp import web

from shared import health
from shared.errors import ApiError

from .v2.base import GATEWAY


def context(gw) -> health.HealthContext:
    return health.HealthContext(gw.config, gw.pool, gw.bus, gw.locations,
                                signing_kid=lambda: gw.keys.current.kid if gw.keys.current else None)


async def _superuser(request: web.Request) -> bool:
    from .api.base import caller

    try:
        principal = await caller(request)
    except ApiError:
        return False
    return bool(principal and principal.superuser)


def handler(kind: str):
    async def handle(request: web.Request) -> web.Response:
        gw = request.app[GATEWAY]
        payload, status = await health.evaluate(context(gw), kind, show_failures=await _superuser(request))
        return web.Response(body=payload, status=status, content_type="application/json", headers={"Cache-Control": "no-store"})

    return handle


def add_routes(app: web.Application) -> None:
    for path, kind in health.PATHS.items():
        app.router.add_get(path, handler(kind))
