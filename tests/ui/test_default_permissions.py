"""Default permissions: Anyone or a specific creator (user or robot), applied to a user, robot or team
with Read, Write or Admin and the seed's message; listed, edited and deleted; and applied when a
repository is created. Each checked through the API."""
from __future__ import annotations

import re

from playwright.async_api import expect

from tests.ui.conftest import audit


async def pick(dialog, field_id: str, typed: str, option: str) -> None:
    await dialog.locator(f"#{field_id}").fill(typed)
    await dialog.get_by_role("option", name=re.compile(rf"^{re.escape(option)}\b")).click()


async def test_default_permissions(open_page, ui_registry):
    status, _ = await ui_registry.call("POST", "organization/", json={"name": "defaultco"})
    assert status == 201
    status, _ = await ui_registry.call("PUT", "organization/defaultco/team/readers", json={"role": "member"})
    assert status == 201
    status, _ = await ui_registry.call("PUT", "organization/defaultco/robots/pusher", json={})
    assert status == 201
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/organization/defaultco?tab=defaults")
    await expect(page.get_by_role("heading", name="No default permissions")).to_be_visible()

    # Anyone who creates a repository: the team readers gets Read.
    await page.locator("#create-default").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.locator("#create-default-submit")).to_be_disabled()
    await pick(dialog, "default-delegate", "read", "readers")
    await dialog.get_by_label("Permission").select_option("read")
    await audit(page, "default-permission-dialog")
    await dialog.locator("#create-default-submit").click()
    await expect(page.get_by_text("Successfully created default permission for creator")).to_be_visible()
    # Toasts show one at a time: close this one, so the next rule's toast is seen to come.
    await page.get_by_test_id("toasts").get_by_role("button", name=re.compile("^Close")).click()
    await expect(page.get_by_text("Successfully created default permission for creator")).to_have_count(0)

    # When bob creates one, the robot gets Write.
    await page.locator("#create-default").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Specific user").check()
    await pick(dialog, "default-creator", "bo", "bob")
    await pick(dialog, "default-delegate", "push", "defaultco+pusher")
    await dialog.get_by_label("Permission").select_option("write")
    await dialog.locator("#create-default-submit").click()
    await expect(page.get_by_text("Successfully created default permission for creator")).to_be_visible()
    status, body = await ui_registry.call("GET", "organization/defaultco/prototypes")
    rules = {(p["activating_user"] and p["activating_user"]["name"], p["delegate"]["name"], p["delegate"]["kind"], p["role"])
             for p in body["prototypes"]}
    assert rules == {(None, "readers", "team", "read"), ("bob", "defaultco+pusher", "user", "write")}
    table = page.get_by_test_id("defaults-table")
    await expect(table.locator("tbody tr")).to_have_count(2)
    await expect(table).to_contain_text("Anyone")
    await audit(page, "organization-default-permissions")

    # Edit: readers get Write; then a repository made by alice gets it.
    await table.get_by_label("Permission for readers").select_option("write")
    await expect(page.get_by_text("Default permission for readers is now write")).to_be_visible()
    status, _ = await ui_registry.call("POST", "repository", json={"namespace": "defaultco", "repository": "fresh"})
    assert status == 201
    status, body = await ui_registry.call("GET", "repository/defaultco/fresh/permissions/team/readers")
    assert status == 200 and body["role"] == "write"
    status, _ = await ui_registry.call("GET", "repository/defaultco/fresh/permissions/user/defaultco+pusher")
    assert status == 404  # alice is not bob: the second rule does not apply

    # Delete the robot's rule from its kebab.
    await page.get_by_label("Actions for defaultco+pusher when bob creates").click()
    await page.get_by_role("menuitem", name="Delete").click()
    await page.get_by_role("dialog").locator("#confirm-delete").click()
    await expect(page.get_by_text("Deleted the default permission")).to_be_visible()
    await expect(table.locator("tbody tr")).to_have_count(1)
    status, body = await ui_registry.call("GET", "organization/defaultco/prototypes")
    assert [p["delegate"]["name"] for p in body["prototypes"]] == ["readers"]
