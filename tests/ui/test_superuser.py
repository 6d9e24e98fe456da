"""The superuser panel: users (create, change e-mail and password, disable and enable, delete; not
oneself), every organisation, service keys (add, approve, extend, delete: what the read-only procedure
needs, without SQL), the registry's read-only status, and registry-wide usage logs. Others get no
panel, and the API refuses them too."""
from __future__ import annotations

import json

import asyncpg
from playwright.async_api import expect

from shared.servicekeys import SigningKey, register
from tests.ui.conftest import PASSWORD, audit


async def signs_in(ui_registry, username: str, password: str) -> int:
    async with ui_registry.http.post(ui_registry.api("signin"), json={"username": username, "password": password}) as r:
        return r.status


async def test_superuser_panel(open_page, ui_registry):
    visit = await open_page("admin")
    page = visit.page
    await visit.goto("/repository")
    await page.get_by_role("link", name="Superuser").click()
    # Users: create erin with a password.
    await page.locator("#create-user").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Username").fill("erin")
    await dialog.get_by_label("E-mail address").fill("erin@example.com")
    await dialog.get_by_label("Password").fill(PASSWORD)
    await audit(page, "superuser-create-user")
    await dialog.locator("#create-user-form-submit").click()
    await expect(page.get_by_text("Created user erin")).to_be_visible()
    assert await signs_in(ui_registry, "erin", PASSWORD) == 200
    await page.get_by_label("Filter users by name").fill("erin")
    row = page.get_by_test_id("users-table-row-erin")
    await expect(row).to_contain_text("erin@example.com")
    # Change the e-mail and the password.
    await page.get_by_label("Actions for erin").click()
    await page.get_by_role("menuitem", name="Change e-mail address").click()
    await page.get_by_role("dialog").get_by_label("E-mail address").fill("erin@new.example")
    await page.locator("#email-form-submit").click()
    await expect(row).to_contain_text("erin@new.example")
    await page.get_by_label("Actions for erin").click()
    await page.get_by_role("menuitem", name="Change password").click()
    await page.get_by_role("dialog").get_by_label("New password").fill("a brand new password")
    await page.locator("#password-form-submit").click()
    await expect(page.get_by_text("Changed the password of erin")).to_be_visible()
    assert await signs_in(ui_registry, "erin", PASSWORD) == 401
    assert await signs_in(ui_registry, "erin", "a brand new password") == 200
    # Disable: sign-in refused; enable again.
    await page.get_by_label("Actions for erin").click()
    await page.get_by_role("menuitem", name="Disable user").click()
    await expect(row).to_contain_text("Disabled")
    assert await signs_in(ui_registry, "erin", "a brand new password") == 401
    status, body = await ui_registry.call("GET", "browse/users", "admin", params={"filter": "erin"})
    assert body["users"][0]["enabled"] is False and body["users"][0]["email"] == "erin@new.example"
    await page.get_by_label("Actions for erin").click()
    await page.get_by_role("menuitem", name="Enable user").click()
    await expect(row).to_contain_text("Enabled")
    assert await signs_in(ui_registry, "erin", "a brand new password") == 200
    # Not oneself.
    await page.get_by_label("Filter users by name").fill("admin")
    await page.get_by_label("Actions for admin").click()
    disable_self = page.get_by_role("menuitem", name="Disable user")
    await expect(disable_self).to_have_attribute("aria-disabled", "true")
    await expect(disable_self).to_contain_text("You cannot do this to yourself")
    await page.keyboard.press("Escape")
    await audit(page, "superuser-users")
    # Delete erin.
    await page.get_by_label("Filter users by name").fill("erin")
    await page.get_by_label("Actions for erin").click()
    await page.get_by_role("menuitem", name="Delete user").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label('Type "confirm" to delete').fill("confirm")
    await dialog.locator("#confirm-delete").click()
    await expect(page.get_by_text("Deleted user erin")).to_be_visible()
    status, body = await ui_registry.call("GET", "browse/users", "admin", params={"filter": "^erin$", "regex": "true"})
    assert body["total"] == 0

    # Organisations: every one, also those admin is not in.
    status, _ = await ui_registry.call("POST", "organization/", "alice", json={"name": "alices-own"})
    assert status == 201
    await page.get_by_role("tab", name="Organisations").click()
    await page.get_by_label("Filter organisations by name").fill("alices-own")
    await expect(page.get_by_test_id("organizations-table-row-alices-own")).to_be_visible()
    await audit(page, "superuser-organizations")

    # Registry status: as the API says (another test may have registered an operator key already).
    status, before = await ui_registry.call("GET", "superuser/registrystatus", "admin")
    await page.get_by_role("tab", name="Registry status").click()
    await expect(page.get_by_test_id("registry-state")).to_have_text("Normal: pushes and changes accepted")
    await expect(page.get_by_test_id("read-only-ready")).to_contain_text("Yes" if before["ready_for_read_only"] else "No")
    await expect(page.get_by_test_id("read-only-ready").locator("li")).to_have_count(len(before["read_only_keys"]))
    await audit(page, "superuser-status")

    # Service keys: add one (approved), approve one added elsewhere, change an expiration, delete.
    added = SigningKey.generate()
    pending = SigningKey.generate()
    conn = await asyncpg.connect(ui_registry.dsn)
    try:
        await register(conn, kid=pending.kid, name="waiting key", service="quay", jwk=pending.jwk, expires_at=None, approval_type=None)
    finally:
        await conn.close()
    await page.get_by_role("tab", name="Service keys").click()
    await page.locator("#add-key").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Public key (JWK)").fill(json.dumps(added.jwk))
    await dialog.get_by_label("Name").fill("read-only key")
    await dialog.locator("#add-key-form-submit").click()
    await expect(page.get_by_text("Added and approved the key")).to_be_visible()
    keys = page.get_by_test_id("keys-table")
    await expect(keys.get_by_test_id(f"keys-table-row-{added.kid}")).to_contain_text("Approved by admin")
    await expect(keys.get_by_test_id(f"keys-table-row-{pending.kid}")).to_contain_text("Awaiting approval")
    await audit(page, "superuser-keys")
    await page.get_by_label(f"Actions for {pending.kid}").click()
    await page.get_by_role("menuitem", name="Approve").click()
    await expect(keys.get_by_test_id(f"keys-table-row-{pending.kid}")).to_contain_text("Approved by admin")
    await page.get_by_label(f"Actions for {added.kid}").click()
    await page.get_by_role("menuitem", name="Change expiration").click()
    await page.get_by_role("dialog").get_by_label("Expires in days from now (empty: never)").fill("30")
    await page.locator("#extend-key-form-submit").click()
    await expect(page.get_by_text("now expires in 30 days")).to_be_visible()
    status, body = await ui_registry.call("GET", "superuser/keys", "admin")
    by_kid = {k["kid"]: k for k in body["keys"]}
    assert by_kid[pending.kid]["approved"] and by_kid[added.kid]["expires"]
    await page.get_by_label(f"Actions for {pending.kid}").click()
    await page.get_by_role("menuitem", name="Delete").click()
    await page.get_by_role("dialog").locator("#confirm-delete").click()
    await expect(keys.get_by_test_id(f"keys-table-row-{pending.kid}")).to_have_count(0)
    status, body = await ui_registry.call("GET", "superuser/keys", "admin")
    assert pending.kid not in {k["kid"] for k in body["keys"]}
    # Now the status says the read-only procedure can start.
    await page.get_by_role("tab", name="Registry status").click()
    await expect(page.get_by_test_id("read-only-ready")).to_contain_text("Yes")
    await expect(page.get_by_test_id("read-only-ready")).to_contain_text(added.kid)

    # Registry-wide logs hold what happened in every namespace.
    await page.get_by_role("tab", name="Usage logs").click()
    await page.get_by_label("Filter by kind").select_option(label="Create organisation")
    await expect(page.get_by_test_id("logs-table")).to_contain_text("alices-own")
    await audit(page, "superuser-logs")


async def test_no_panel_for_others(open_page, ui_registry):
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository")
    await expect(page.get_by_role("link", name="Organisations")).to_be_visible()
    await expect(page.get_by_role("link", name="Superuser")).to_have_count(0)
    await visit.goto("/superuser")
    await expect(page.get_by_role("heading", name="This page not found")).to_be_visible()
    for path in ("browse/users", "superuser/keys", "superuser/registrystatus", "superuser/logs"):
        status, _ = await ui_registry.call("GET", path, "alice")
        assert status == 403, path
