"""The gateway serves the built UI at `/`: client routes fall back to index.html (not cached), hashed
assets are immutable, a Content-Security-Policy without inline script is on every answer, and /v2,
/api/v1, /health*, /metrics and /config keep their own handlers."""
from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.gateway import ui
from tests.ui.conftest import ROOT


def assert_csp(headers) -> None:
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
    assert "unsafe-inline" not in headers["Content-Security-Policy"] and "unsafe-eval" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_client_routes_assets_and_other_handlers(ui_registry):
    http, url = ui_registry.http, ui_registry.url
    index = (ROOT / "web" / "dist" / "index.html").read_text()
    for path in ("/", "/repository", "/repository/alice/app.v1?tab=tags", "/tag/alice/app/v1.0", "/signin"):
        async with http.get(url + path) as r:
            assert r.status == 200 and await r.text() == index, path
            assert r.headers["Cache-Control"] == "no-cache" and r.content_type == "text/html"
            assert_csp(r.headers)
    found = re.search(r'src="(/assets/[^"]+\.js)"', index)
    assert found, index
    asset = found.group(1)
    async with http.get(url + asset) as r:
        assert r.status == 200 and r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert "javascript" in r.content_type
        assert_csp(r.headers)
    async with http.get(url + "/assets/gone-0000.js") as r:
        assert r.status == 404  # never index.html in place of a script
    async with http.get(url + "/favicon.svg") as r:
        assert r.status == 200 and r.headers["Cache-Control"] == "no-cache"
    async with http.get(url + "/../../etc/passwd") as r:
        assert r.status in (200, 404) and "root:" not in await r.text()
    async with http.get(url + "/api/v1/no-such-thing") as r:
        assert r.status == 404 and (await r.json())["error_type"] == "not_found"
    async with http.get(url + "/api/v2/x") as r:
        assert r.status == 404 and await r.text() == "not found\n"
    async with http.get(url + "/v2/") as r:
        assert r.status == 401 and r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    async with http.get(url + "/config") as r:
        assert r.status == 200 and (await r.json())["config"]["REGISTRY_TITLE_SHORT"] == "MTR"
    async with http.get(url + "/health/instance") as r:
        assert r.status in (200, 503) and r.content_type == "application/json"  # the health handler, not the UI
    async with http.get(url + "/metrics") as r:
        assert r.status == 200 and "meridian_http_requests_total" in await r.text()
    async with http.post(url + "/repository") as r:
        assert r.status == 405


async def test_an_unbuilt_bundle_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MERIDIAN_WEB_DIST", str(tmp_path / "missing"))
    app = web.Application()
    ui.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/repository")
        assert r.status == 404 and "npm ci && npm run build" in await r.text()
        assert_csp(r.headers)
