"""A registry in read-only mode: the UI shows the banner with the registry's message, sign-in still
works, and nothing that would change the registry is offered."""
from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys

import aiohttp
import asyncpg
import yaml
from playwright.async_api import expect

from shared.embedded import free_port
from shared.errors import READ_ONLY_MESSAGE
from shared.servicekeys import SigningKey, register, write_key_files
from tests.helpers import eventually
from tests.ui.conftest import PASSWORD, ROOT, UiRegistry, audit


async def test_read_only_registry_shows_the_banner_and_offers_no_changes(open_page, ui_registry, tmp_path):
    status, _ = await ui_registry.call("POST", "organization/", json={"name": "readonlyco"})  # while writable
    assert status == 201
    key = SigningKey.generate()
    write_key_files(key, tmp_path / "ro-key")
    conn = await asyncpg.connect(ui_registry.dsn)
    try:
        await register(conn, kid=key.kid, name="ui read-only", service="quay", jwk=key.jwk,
                       expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1), approval_type="cli")
    finally:
        await conn.close()
    port = free_port()
    config = yaml.safe_load(ui_registry.config_path.read_text())
    config.update({"REGISTRY_STATE": "readonly", "SERVER_HOSTNAME": f"127.0.0.1:{port}",
                   "INSTANCE_SERVICE_KEY_LOCATION": str(tmp_path / "ro-key.pem"),
                   "INSTANCE_SERVICE_KEY_KID_LOCATION": str(tmp_path / "ro-key.kid")})
    (tmp_path / "ro.yaml").write_text(yaml.safe_dump(config))
    with open(tmp_path / "gateway.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "gateway", "--config", str(tmp_path / "ro.yaml"),
                                    "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        ro = UiRegistry(f"http://127.0.0.1:{port}", ui_registry.dsn, tmp_path / "ro.yaml", f"127.0.0.1:{port}", ui_registry.http,
                        dict(ui_registry.tokens))

        async def answering():
            assert process.poll() is None, (tmp_path / "gateway.log").read_text()
            try:
                async with ro.http.get(f"{ro.url}/config") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(answering, timeout=60, what="the read-only gateway to answer")
        visit = await open_page(None)
        visit.registry = ro
        page = visit.page
        await visit.goto("/signin")
        await expect(page.get_by_test_id("read-only-banner")).to_contain_text(READ_ONLY_MESSAGE)
        await page.get_by_label("Username").fill("alice")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.keyboard.press("Enter")
        await expect(page.locator("#user-menu")).to_have_text("alice")
        await expect(page.get_by_role("link", name="alice/app")).to_be_visible()
        await expect(page.locator("#create-repository")).to_have_count(0)
        await expect(page.locator("#repositories-actions")).to_have_count(0)
        await audit(page, "repositories-read-only")
        await page.get_by_role("link", name="alice/app").click()
        await page.get_by_role("tab", name="Tags").click()
        await expect(page.get_by_test_id("tag-row-v1.0")).to_be_visible()
        await expect(page.get_by_label("Actions for v1.0")).to_have_count(0)
        await expect(page.get_by_role("tab", name="Settings")).to_have_count(0)
        await expect(page.locator("#edit-description")).to_have_count(0)
        # Organisations: nothing to create, delete or change; settings closed with the reason.
        await page.get_by_role("link", name="Organisations").click()
        await expect(page.get_by_test_id("organizations-table")).to_be_visible()
        await expect(page.locator("#create-organization")).to_have_count(0)
        await visit.goto("/organization/readonlyco?tab=robots")
        await expect(page.get_by_role("heading", name="No robot accounts")).to_be_visible()
        await expect(page.locator("#create-robot")).to_have_count(0)
        await expect(page.get_by_role("tab", name="Settings")).to_have_attribute("aria-disabled", "true")
        await page.get_by_role("tab", name="Teams and membership").click()
        await expect(page.get_by_test_id("teams-table-row-owners")).to_be_visible()
        await expect(page.locator("#create-team")).to_have_count(0)
        await audit(page, "organization-teams-read-only")
        status, body = await ro.call("POST", "organization/", json={"name": "refusedco"})
        assert status == 405 and body["error_message"] == READ_ONLY_MESSAGE
        status, body = await ro.call("POST", "repository", json={"namespace": "alice", "repository": "refused"})
        assert status == 405 and body["error_message"] == READ_ONLY_MESSAGE  # what the UI no longer offers
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
