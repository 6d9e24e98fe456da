"""Tag list with `n`/`last` pagination and a `Link` header."""
from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from shared.errors import RegistryError
from shared.registry import repositories, tags

from ..auth import Action
from .base import authorize, gateway

DEFAULT_PAGE = 1000
MAX_PAGE = 10000


def page_params(request: web.Request) -> tuple[int, str | None]:
    raw = request.query.get("n")
    if raw is None or raw == "":
        n = DEFAULT_PAGE
    else:
        try:
            n = int(raw)
        except ValueError:
            raise RegistryError("UNSUPPORTED", f"n must be an integer, got {raw!r}", status=400) from None
        if n < 0:
            raise RegistryError("UNSUPPORTED", f"n must not be negative, got {raw!r}", status=400)
    return min(n, MAX_PAGE), request.query.get("last") or None


def link_header(path: str, n: int, last: str) -> str:
    return f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'


async def list_tags(request: web.Request, name: str) -> web.Response:
    await authorize(request, name, Action.PULL)
    gw = gateway(request)
    n, last = page_params(request)
    repo_id = await repositories.get_id(gw.pool, name)
    if repo_id is None:
        raise RegistryError("NAME_UNKNOWN", detail={"name": name})
    names = await tags.list_live(gw.pool, repo_id, last, n + 1) if n else []
    headers = {}
    if len(names) > n:
        names = names[:n]
        headers["Link"] = link_header(f"/v2/{name}/tags/list", n, names[-1])
    return web.json_response({"name": name, "tags": names}, headers=headers)
