"""`GET /v2/_catalog` with `n`/`last` and a `Link` header; lists only what the caller may read."""
from __future__ import annotations

from aiohttp import web

from shared.model import repositories

from ..auth import Action
from .base import gateway
from .tags import link_header, page_params


async def catalog(request: web.Request) -> web.Response:
    gw = gateway(request)
    identity = await gw.authorizer.authenticate(request)
    n, last = page_params(request)
    visible: list[str] = []
    cursor = last
    # Filter by permission page by page so a private name never leaks and `n` still holds.
    while n and len(visible) <= n:
        batch = await repositories.list_names(gw.pool, cursor, n + 1)
        for full_name in batch:
            if await gw.authorizer.allowed(identity, full_name, Action.PULL):
                visible.append(full_name)
        if len(batch) < n + 1:
            break
        cursor = batch[-1]
    headers = {}
    if len(visible) > n:
        visible = visible[:n]
        headers["Link"] = link_header("/v2/_catalog", n, visible[-1])
    return web.json_response({"repositories": visible}, headers=headers)
