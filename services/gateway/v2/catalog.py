"""`GET /v2/_catalog` with `n`/`last` and a `Link` header; lists only what the caller may read."""
from __future__ import annotations

from aiohttp import web

from .base import gateway
from .tags import link_header, page_params


async def catalog(request: web.Request) -> web.Response:
    gw = gateway(request)
    identity = await gw.authorizer.authenticate(request)
    if not identity.token and gw.switches.access.requires_credentials():
        raise gw.authorizer.challenge("registry:catalog:*")
    n, last = page_params(request)
    # The authorizer filters by read permission in the query, so a private name never leaks and `n` holds.
    visible = await gw.authorizer.catalog(identity, last, n + 1) if n else []
    headers = {}
    if len(visible) > n:
        visible = visible[:n]
        headers["Link"] = link_header("/v2/_catalog", n, visible[-1])
    return web.json_response({"repositories": visible}, headers=headers)
