"""The repository page's Information and Settings tabs, the Organisations page and a missing page:
Markdown descriptions sanitised, pull commands, permissions, visibility, state, the namespace's
replication locations and deletion, each checked through the API."""
from __future__ import annotations

import re

from playwright.async_api import expect

from tests.ui.conftest import audit

DESCRIPTION = """# Release notes

**Bold** text, a [good link](https://example.com/docs) and a [bad link](javascript:alert('md')).

<script>alert('description')</script>

<img src=x onerror="alert('img')">
"""


async def test_information_tab_renders_markdown_safely(open_page, ui_registry):
    status, _ = await ui_registry.call("PUT", "repository/alice/app", json={"description": DESCRIPTION})
    assert status == 200
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository/alice/app")
    description = page.get_by_test_id("description")
    await expect(description.get_by_role("heading", name="Release notes")).to_be_visible()
    await expect(description.locator("strong")).to_have_text("Bold")
    await expect(description.get_by_role("link", name="good link")).to_have_attribute("href", "https://example.com/docs")
    assert await description.locator("a[href^='javascript']").count() == 0
    assert await description.locator("script, img[onerror], iframe").count() == 0
    await expect(page.locator(f"input[value='podman pull {ui_registry.host}/alice/app:latest']")).to_have_count(1)
    await audit(page, "repository-information")

    await page.locator("#edit-description").click()
    await page.get_by_label("Description (Markdown)").fill("Now *short*.")
    await page.locator("#save-description").click()
    await expect(description.locator("em")).to_have_text("short")
    status, body = await ui_registry.call("GET", "repository/alice/app", params={"includeTags": "false"})
    assert body["description"] == "Now *short*."


async def test_settings_permissions_visibility_state_replication_and_delete(open_page, ui_registry):
    status, _ = await ui_registry.call("POST", "repository", json={"namespace": "alice", "repository": "configured"})
    assert status == 201
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository/alice/configured?tab=settings")

    # Permissions: grant bob read, raise to write, then remove.
    await page.get_by_label("Name", exact=True).fill("bo")  # suggested as the name is typed
    await page.get_by_role("option", name="bob User").click()
    await expect(page.get_by_label("Name", exact=True)).to_have_value("bob")
    await page.locator("#grant-permission").click()
    await expect(page.get_by_test_id("permissions-table")).to_contain_text("bob")
    status, body = await ui_registry.call("GET", "repository/alice/configured/permissions/user/bob")
    assert body == {"name": "bob", "role": "read"}
    await page.get_by_label("Permission of bob").select_option("write")
    await expect(page.get_by_text("Set bob's permission to write")).to_be_visible()
    status, body = await ui_registry.call("GET", "repository/alice/configured/permissions/user/bob")
    assert body["role"] == "write"
    visit.problems.allow(404)
    await page.get_by_label("Name", exact=True).fill("nobody-here")
    await page.locator("#grant-permission").click()
    await expect(page.get_by_test_id("permission-error")).to_contain_text("not found")
    await audit(page, "repository-settings")
    await page.get_by_label("Remove bob").click()
    await expect(page.get_by_test_id("permissions-table")).not_to_contain_text("bob")
    status, _ = await ui_registry.call("GET", "repository/alice/configured/permissions/user/bob")
    assert status == 404

    # Visibility and state.
    await page.get_by_label("Public: anyone may pull").click()  # applied when the API answers
    await expect(page.get_by_text("alice/configured is now public")).to_be_visible()
    status, body = await ui_registry.call("GET", "repository/alice/configured", params={"includeTags": "false"})
    assert body["is_public"] is True
    status, body = await ui_registry.call("GET", "repository/alice/configured", None, params={"includeTags": "false"})
    assert status == 200  # anonymous may read it now
    await page.get_by_label("Read-only: pushes and tag changes are refused").click()
    await expect(page.get_by_text("alice/configured is now read-only")).to_be_visible()
    status, body = await ui_registry.call("GET", "repository/alice/configured", params={"includeTags": "false"})
    assert body["state"] == "READ_ONLY"

    # The namespace's replication locations.
    await page.get_by_label("eu", exact=True).check()
    await page.locator("#save-replication").click()
    await expect(page.get_by_text("Replication locations of alice saved")).to_be_visible()
    status, body = await ui_registry.call("GET", "organization/alice/replication")
    assert body["locations"] == ["eu"]

    # Delete, typing "confirm".
    await page.locator("#delete-repository").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label('Type "confirm" to delete').fill("confirm")
    await dialog.locator("#confirm-delete").click()
    await expect(page).to_have_url(re.compile(r"/repository$"))
    status, _ = await ui_registry.call("GET", "repository/alice/configured")
    assert status == 404


async def test_what_a_reader_sees_and_the_other_pages(open_page, ui_registry):
    status, _ = await ui_registry.call("PUT", "repository/alice/app/permissions/user/bob", json={"role": "read"})
    assert status == 200
    visit = await open_page("bob")
    page = visit.page
    await visit.goto("/repository/alice/app?tab=tags")
    await expect(page.get_by_test_id("tag-row-v1.0")).to_be_visible()
    # A reader gets no settings tab, no selection and no kebab.
    await expect(page.get_by_role("tab", name="Settings")).to_have_count(0)
    await expect(page.get_by_label("Actions for v1.0")).to_have_count(0)
    await expect(page.get_by_test_id("tags-table").get_by_role("checkbox")).to_have_count(0)
    await audit(page, "repository-tags-reader")
    await visit.goto("/organization")
    await expect(page.get_by_role("heading", name="No organisations")).to_be_visible()  # bob is in none
    await audit(page, "organizations-none")
    visit.problems.allow(404)
    await visit.goto("/repository/alice/not-there")
    await expect(page.get_by_text("Repository alice/not-there not found")).to_be_visible()
    await audit(page, "not-found")
