"""The web UI: the built bundle of web/ served at `/`.

Hashed files under /assets/ are immutable (cached for a year); index.html is never cached, so a new
deployment is picked up on the next load. Any other path without a file extension is a client route
and gets index.html. Every answer carries a Content-Security-Policy that allows no inline script.
/v2, /api/v1, /health*, /metrics and /config are registered before this and keep their handlers."""
from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web

DEFAULT_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
# Styles: PatternFly's popper positions menus through element.style (CSSOM), which CSP does not govern.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: https: http:",  # BRANDING logos may live elsewhere
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
# Prefixes owned by other handlers: a miss there is a miss, never the UI.
_NOT_UI = frozenset({"v2", "api", "health", "metrics", "config"})
NOT_BUILT = ("The web UI is not built. `./meridian up` builds it; by hand: cd web && npm ci && npm run build "
             "(or set MERIDIAN_WEB_DIST to a built bundle).\n")


def dist_folder() -> Path:
    return Path(os.environ.get("MERIDIAN_WEB_DIST") or DEFAULT_DIST)


def _file_response(path: Path, cache: str) -> web.FileResponse:
    response = web.FileResponse(path, headers={"Cache-Control": cache, **SECURITY_HEADERS})
    return response


async def serve_ui(request: web.Request) -> web.StreamResponse:
    dist = dist_folder()
    tail = request.match_info.get("tail", "")
    index = dist / "index.html"
    if not index.is_file():
        return web.Response(status=404, text=NOT_BUILT, headers=SECURITY_HEADERS)
    first = tail.split("/", 1)[0]
    if first in _NOT_UI:
        return web.Response(status=404, text="not found\n", headers=SECURITY_HEADERS)
    if tail:
        root = dist.resolve()
        candidate = (dist / tail).resolve()
        if candidate.is_relative_to(root) and candidate.is_file() and candidate != index.resolve():
            return _file_response(candidate, IMMUTABLE if first == "assets" else "no-cache")
        if first == "assets":  # a stale hash: answering index.html would hand the browser HTML as a script
            return web.Response(status=404, text="not found\n", headers=SECURITY_HEADERS)
    # Client routes (repository and tag names may hold dots, so no guessing by extension).
    return _file_response(index, "no-cache")


def add_routes(app: web.Application) -> None:
    """Register last: the catch-all answers only what no other route took."""
    app.router.add_get("/", serve_ui)
    app.router.add_get("/{tail:.+}", serve_ui)
