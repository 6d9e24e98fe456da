"""The web UI under test: a real `meridian up` (its own database on the test PostgreSQL, the test NATS,
local storage in two locations), users made with `meridian user create`, images pushed through /v2,
and Debian's chromium driven by Playwright (the system browser; nothing is downloaded).

Every page a test visits is checked for console errors and failed requests; `audit` runs axe-core on
it in both themes and saves a screenshot of each under tests/ui/screenshots/."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
import yaml

from shared.db import with_database
from shared.embedded import free_port
from tests.helpers import OCI_INDEX, OCI_MANIFEST, descriptor, eventually, push_image
from tests.identity_world import Authed, basic

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
PASSWORD = "ui-password-1"
USERS = ("admin", "alice", "bob")
TITLE, SHORT_TITLE = "Meridian Test Registry", "MTR"
FOOTER_URL = "https://example.com/support"



@dataclass
class UiRegistry:
    url: str
    dsn: str
    config_path: Path
    host: str
    http: aiohttp.ClientSession
    tokens: dict[str, str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)

    def api(self, path: str) -> str:
        return f"{self.url}/api/v1/{path.lstrip('/')}"

    async def call(self, method: str, path: str, user: str | None = "alice", **kwargs):
        """The API as `user` (bearer token), to check what the UI did; None = anonymous."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        async with self.http.request(method, self.api(path), headers=headers, **kwargs) as r:
            body = await r.json() if r.status != 204 else None
            return r.status, body

    async def make_user(self, name: str, *, email: str | None = None) -> str:
        """A user made through the API by the superuser, with PASSWORD and an API token in `tokens`."""
        status, body = await self.call("POST", "superuser/users/", "admin",
                                       json={"username": name, "password": PASSWORD, **({"email": email} if email else {})})
        assert status == 201, body
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:  # sign in, then make a token
            async with session.post(self.api("signin"), json={"username": name, "password": PASSWORD}) as r:
                assert r.status == 200, await r.text()
                csrf = (await r.json())["csrf_token"]
            async with session.post(self.api("user/tokens"), json={"title": "ui tests"}, headers={"X-CSRF-Token": csrf}) as r:
                assert r.status == 201, await r.text()
                self.tokens[name] = (await r.json())["token"]
        return name

    async def sql(self, query: str, *args):
        """Rows written straight to the registry's database, for what would take thousands of calls."""
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    async def pusher(self, user: str, repository: str) -> Authed:
        params = [("service", self.host), ("scope", f"repository:{repository}:pull,push")]
        async with self.http.get(f"{self.url}/v2/auth", params=params, headers={"Authorization": basic(user, PASSWORD)}) as r:
            assert r.status == 200, await r.text()
            token = (await r.json())["token"]
        return Authed(self.url, aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}))


def _cli(config_path: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "services.cli", *args, "--config", str(config_path)], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout.strip()


async def push_index(reg: UiRegistry, pusher: Authed, repository: str, tag: str, children: list[tuple[str, dict]]) -> str:
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{**descriptor(OCI_MANIFEST, b"x"), "digest": digest, "platform": platform} for digest, platform in children]}
    body = json.dumps(index).encode()
    async with pusher.http.put(pusher.v2(f"{repository}/manifests/{tag}"), data=body, headers={"Content-Type": OCI_INDEX}) as r:
        assert r.status == 201, await r.text()
        return r.headers["Docker-Content-Digest"]


async def seed(reg: UiRegistry) -> None:
    """alice/app: v1.0, v1.1, v2.0, latest, an index `multi` and a cosign signature on v2.0;
    alice/public-app (public); bob/secret (private to bob)."""
    app = await reg.pusher("alice", "alice/app")
    try:
        for tag in ("v1.0", "v1.1", "v2.0", "latest"):
            reg.digests[tag], _ = await push_image(app, "alice/app", tag, layers=2)
        reg.digests["multi"] = await push_index(reg, app, "alice/app", "multi", [
            (reg.digests["v1.0"], {"os": "linux", "architecture": "amd64"}),
            (reg.digests["v1.1"], {"os": "linux", "architecture": "arm64", "variant": "v8"})])
        reg.digests["signature"], _ = await push_image(app, "alice/app", None, extra={
            "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            "subject": {"mediaType": OCI_MANIFEST, "digest": reg.digests["v2.0"], "size": 1},
            "annotations": {"dev.sigstore.cosign/signer": "<script>alert('annotation')</script>"}})
    finally:
        await app.http.close()
    public = await reg.pusher("alice", "alice/public-app")
    try:
        await push_image(public, "alice/public-app", "stable")
    finally:
        await public.http.close()
    status, _ = await reg.call("POST", "repository/alice/public-app/changevisibility", json={"visibility": "public"})
    assert status == 200
    secret = await reg.pusher("bob", "bob/secret")
    try:
        await push_image(secret, "bob/secret", "v1")
    finally:
        await secret.http.close()


@pytest_asyncio.fixture(scope="session")
async def ui_registry(servers, tmp_path_factory):
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: `./meridian test` runs npm ci in web/ first")
    if not (ROOT / "web" / "dist" / "index.html").is_file():
        pytest.fail("web/dist is not built: `./meridian test` builds it")
    work = tmp_path_factory.mktemp("ui")
    database = f"meridian_ui_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(servers.postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{database}"')
    dsn = with_database(servers.postgres_dsn, database)
    port = free_port()
    host = f"127.0.0.1:{port}"
    config = {
        "DB_URI": dsn, "NATS_URL": servers.nats_url, "MERIDIAN_BUS_PREFIX": f"ui{uuid.uuid4().hex[:8]}",
        "SERVER_HOSTNAME": host, "SUPER_USERS": ["admin"], "FEATURE_ANONYMOUS_ACCESS": True,
        "FEATURE_STORAGE_REPLICATION": True, "REGISTRY_TITLE": TITLE, "REGISTRY_TITLE_SHORT": SHORT_TITLE,
        "BRANDING": {"logo": "/favicon.svg", "footer_img": "/favicon.svg", "footer_url": FOOTER_URL},
        "DISTRIBUTED_STORAGE_CONFIG": {"us": ["LocalStorage", {"storage_path": str(work / "us")}],
                                       "eu": ["LocalStorage", {"storage_path": str(work / "eu")}]},
        "DISTRIBUTED_STORAGE_PREFERENCE": ["us"], "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS": [],
        # The time-machine choices an organisation's settings offer: Never, 1 week, 1 month, 1 year.
        "TAG_EXPIRATION_OPTIONS": ["0s", "1w", "30d", "365d"], "DEFAULT_TAG_EXPIRATION": "1w",
        # Usage-log exports announce themselves to a test server on this machine.
        "MERIDIAN_CALLBACK_ALLOWED_HOSTS": ["127.0.0.1"],
        # Notifications and quotas (test_notifications_quota.py): webhooks to the test's own receiver.
        "FEATURE_QUOTA_MANAGEMENT": True,
    }
    config_path = work / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    with open(work / "up.log", "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--config", str(config_path), "--data",
                                    str(work / "data"), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    http = aiohttp.ClientSession()
    reg = UiRegistry(f"http://{host}", dsn, config_path, host, http)
    try:
        async def answering():
            if process.poll() is not None:
                raise AssertionError((work / "up.log").read_text())
            try:
                async with http.get(f"{reg.url}/v2/") as r:
                    return r.status in (200, 401)
            except aiohttp.ClientError:
                return False

        await eventually(answering, timeout=90, what="meridian up to answer")
        for user in USERS:
            await asyncio.to_thread(_cli, config_path, "user", "create", user, "--password-stdin", stdin=PASSWORD + "\n")
            reg.tokens[user] = (await asyncio.to_thread(_cli, config_path, "user", "token", user)).splitlines()[-1]
        await seed(reg)
        yield reg
    finally:
        await http.close()
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


@pytest_asyncio.fixture(scope="session")
async def browser():
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `./meridian test` installs it with apt")
    SCREENSHOTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


class PageProblems:
    """Console errors, failed requests and 4xx/5xx answers seen by a page, and dialogs (there must be none:
    an alert() would mean injected script ran)."""

    def __init__(self, page, allowed_statuses: Iterable[int] = ()):
        self.errors: list[str] = []
        self.allowed_statuses = set(allowed_statuses)
        self.navigating = False  # loads the browser abandons because the test opens another page are no failures
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("dialog", lambda d: self.errors.append(f"dialog opened: {d.message}"))

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _response(self, response) -> None:
        if response.status >= 400 and response.status not in self.allowed_statuses:
            self.errors.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def _failed(self, request) -> None:
        if not (self.navigating and request.failure == "net::ERR_ABORTED"):
            self.errors.append(f"request failed: {request.method} {request.url} {request.failure}")

    def allow(self, *statuses: int) -> None:
        self.allowed_statuses.update(statuses)

    def check(self) -> None:
        # Failures the page expected (a 401 that ends a session, a 404 it shows) are allowed by status only.
        relevant = [e for e in self.errors if not any(e.startswith("console: Failed to load resource: the server responded "
                                                                    f"with a status of {s}") for s in self.allowed_statuses)]
        assert not relevant, "\n".join(relevant)


@dataclass
class Visit:
    page: Any  # playwright Page and BrowserContext
    context: Any
    problems: PageProblems
    registry: UiRegistry

    async def goto(self, path: str) -> None:
        self.problems.navigating = True
        try:
            await self.page.goto(f"{self.registry.url}{path}")
        finally:
            self.problems.navigating = False

    async def close(self) -> None:
        self.problems.check()
        await self.context.close()


@pytest_asyncio.fixture
async def open_page(browser, ui_registry):
    """open_page(user or None) -> Visit: a fresh browser context, signed in through the API's
    sign-in (the sign-in form has its own test). Problems are checked when the test ends."""
    visits: list[Visit] = []

    async def open_(user: str | None = "alice", *, theme: str = "light") -> Visit:
        context = await browser.new_context(viewport={"width": 1366, "height": 900}, color_scheme=theme, timezone_id="UTC", locale="en-US")
        await context.add_init_script(  # the first visit's appearance; what the user picks later stays
            f"if (!localStorage.getItem('meridian.appearance')) localStorage.setItem('meridian.appearance', '{theme}')")
        page = await context.new_page()
        page.set_default_timeout(10_000)
        visit = Visit(page, context, PageProblems(page), ui_registry)
        if user:
            response = await context.request.post(ui_registry.api("signin"), data={"username": user, "password": PASSWORD})
            assert response.status == 200, await response.text()
        visits.append(visit)
        return visit

    yield open_
    failures = []
    for visit in visits:
        try:
            await visit.close()
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)


async def settle(page, timeout: float = 5.0) -> None:
    """Until no CSS transition or animation runs on the page."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await page.evaluate("document.getAnimations().filter(a => a.playState === 'running').length") > 0:
        assert loop.time() < deadline, "the page kept animating"
        await asyncio.sleep(0.05)


async def screenshot(page, path: Path) -> None:
    """The whole page: PatternFly scrolls inside <main>, so the viewport grows to its content first."""
    size = page.viewport_size
    height = await page.evaluate("Math.max(...[...document.querySelectorAll('main, [role=dialog]')].map(e => e.scrollHeight), 0)")
    if height + 120 > size["height"]:
        await page.set_viewport_size({"width": size["width"], "height": min(int(height) + 120, 8000)})
    await page.screenshot(path=str(path))
    await page.set_viewport_size(size)


async def audit(page, name: str) -> None:
    """axe-core in the light and the dark theme (no serious or critical violation), with a full-page
    screenshot of each under tests/ui/screenshots/<name>-<theme>.png. Leaves the page light."""
    source = AXE.read_text()
    for theme in ("light", "dark"):
        await page.evaluate("dark => document.documentElement.classList.toggle('pf-v6-theme-dark', dark)", theme == "dark")
        # PatternFly fades colours between themes: measure contrast once every transition has ended.
        # (Polled from here: wait_for_function evaluates strings in the page, which its CSP forbids.)
        await settle(page)
        if not await page.evaluate("typeof window.axe !== 'undefined'"):
            await page.evaluate(source)  # evaluated, not a <script>: the page's CSP allows no inline script
        result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        serious = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
                   for v in result["violations"] if v["impact"] in ("serious", "critical")]
        await screenshot(page, SCREENSHOTS / f"{name}-{theme}.png")
        assert not serious, f"{name} ({theme}):\n" + "\n".join(serious)
    await page.evaluate("document.documentElement.classList.remove('pf-v6-theme-dark')")
