"""Robot accounts: the creation wizard with the seed's messages (and the error for a duplicate), the
token with podman and docker snippets (and the token working on /v2/auth), details on expansion,
regenerating the token (the old one stops working), bulk repository permissions with the count in
the Repositories column, deleting with the checkbox and trash or the kebab; each checked through
the API."""
from __future__ import annotations

import base64
import json
import re

from playwright.async_api import expect

from tests.identity_world import basic
from tests.ui.conftest import audit


async def token_works(ui_registry, robot: str, token: str) -> bool:
    params = [("service", ui_registry.host), ("scope", f"repository:{robot.split('+')[0]}/r1:pull")]
    async with ui_registry.http.get(f"{ui_registry.url}/v2/auth", params=params, headers={"Authorization": basic(robot, token)}) as r:
        return r.status == 200


async def test_robot_wizard_credentials_permissions_and_delete(open_page, ui_registry):
    status, _ = await ui_registry.call("POST", "organization/", json={"name": "robotco"})
    assert status == 201
    for repo in ("r1", "r2", "r3"):
        status, _ = await ui_registry.call("POST", "repository", json={"namespace": "robotco", "repository": repo})
        assert status == 201
    status, _ = await ui_registry.call("PUT", "organization/robotco/team/ci", json={"role": "member"})
    assert status == 201
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/organization/robotco?tab=robots")
    await expect(page.get_by_role("heading", name="No robot accounts")).to_be_visible()

    async def create(name: str, *, team: str | None = None, write_on: str | None = None) -> None:
        await page.locator("#create-robot").click()
        wizard = page.get_by_role("dialog")
        footer = wizard.locator(".pf-v6-c-wizard__footer")
        await wizard.get_by_label("Robot name").fill(name)
        await wizard.get_by_label("Description").fill("builds the images")
        await footer.get_by_role("button", name="Next", exact=True).click()
        if team:
            await wizard.get_by_test_id(f"robot-teams-row-{team}").get_by_role("checkbox").check()
        await footer.get_by_role("button", name="Next", exact=True).click()
        if write_on:
            await wizard.get_by_label(f"Permission of robotco+{name} on {write_on}").select_option("write")
        await footer.get_by_role("button", name="Next", exact=True).click()
        await expect(wizard.get_by_test_id("robot-review")).to_contain_text(f"robotco+{name}")
        await footer.get_by_role("button", name="Review and finish").click()

    await create("builder", team="ci", write_on="robotco/r1")
    await expect(page.get_by_text("Successfully created robot account with robot name: robotco+builder")).to_be_visible()
    credentials = page.get_by_role("dialog", name="Credentials for robotco+builder")
    token = await credentials.get_by_label("Robot token").input_value()
    assert len(token) >= 32 and await token_works(ui_registry, "robotco+builder", token)
    await audit(page, "robot-credentials")
    await credentials.get_by_role("tab", name="podman login").click()
    await expect(credentials.get_by_label("podman login command")).to_have_value(
        f"podman login -u='robotco+builder' -p='{token}' {ui_registry.host}")
    await credentials.get_by_role("tab", name="Docker configuration").click()
    config = json.loads(await credentials.get_by_test_id("docker-config").inner_text())
    assert base64.b64decode(config["auths"][ui_registry.host]["auth"]).decode() == f"robotco+builder:{token}"
    await credentials.get_by_role("button", name="Close").last.click()
    status, body = await ui_registry.call("GET", "organization/robotco/robots/builder")
    assert body["description"] == "builds the images" and body["teams"] == [{"name": "ci"}]
    assert body["permissions"] == [{"repository": {"name": "robotco/r1", "is_public": False}, "role": "write"}]

    # The same name again: the seed's error.
    visit.problems.allow(409)
    await create("builder")
    # The toast (outside the dialog, so hidden from the accessibility tree while it is open) and the dialog's own alert.
    await expect(page.locator(".pf-v6-c-alert-group .pf-v6-c-alert__title").last).to_have_text(re.compile(r"Error creating robot account$"))
    await expect(page.get_by_test_id("robot-wizard-error")).to_contain_text("already exists")
    await page.get_by_role("dialog").get_by_role("button", name="Cancel").click()

    # Details on expansion.
    row = page.get_by_test_id("robots-table-row-robotco+builder")
    await expect(row).to_contain_text("ci")
    await row.get_by_role("button", name="Details").click()
    details = page.get_by_test_id("robot-details-robotco+builder")
    await expect(details).to_contain_text("builds the images")
    await expect(details).to_contain_text("robotco/r1: Write")
    await audit(page, "organization-robots")

    # Regenerate: the old token stops working, the new one works.
    await page.get_by_label("Actions for robotco+builder").click()
    await page.get_by_role("menuitem", name="View credentials").click()
    credentials = page.get_by_role("dialog")
    await expect(credentials.get_by_test_id("token-hidden")).to_contain_text("keeps only its hash")
    await credentials.locator("#regenerate-token").click()
    await expect(credentials.get_by_test_id("regenerate-warning")).to_be_visible()
    await credentials.locator("#confirm-regenerate").click()
    await expect(page.get_by_text("Regenerated the token of robotco+builder")).to_be_visible()
    new_token = await credentials.get_by_label("Robot token").input_value()
    assert new_token != token
    assert await token_works(ui_registry, "robotco+builder", new_token)
    assert not await token_works(ui_registry, "robotco+builder", token)
    await credentials.get_by_role("button", name="Close").last.click()

    # Bulk: check r2 and r3, one permission for both; the Repositories column then counts three.
    await page.get_by_test_id("robot-repositories-robotco+builder").click()
    modal = page.get_by_role("dialog")
    for repo in ("robotco/r2", "robotco/r3"):
        await modal.get_by_test_id(f"role-table-row-{repo}").get_by_role("checkbox").check()
    await modal.get_by_label("Permission for the checked repositories").select_option("read")
    await modal.locator("#apply-bulk-role").click()
    await expect(page.get_by_text("Successfully updated repository permission")).to_be_visible()
    await expect(modal.get_by_label("Permission of robotco+builder on robotco/r3")).to_have_value("read")
    await audit(page, "robot-permissions-dialog")
    await modal.locator("#close-robot-permissions").click()
    await expect(page.get_by_test_id("robot-repositories-robotco+builder")).to_have_text("3 repositories")
    status, body = await ui_registry.call("GET", "organization/robotco/robots/builder/permissions")
    assert {p["repository"]["name"]: p["role"] for p in body["permissions"]} == {
        "robotco/r1": "write", "robotco/r2": "read", "robotco/r3": "read"}

    # Delete two with the checkbox and trash ("confirm"), one from its kebab.
    for name in ("old_one", "old_two"):
        status, _ = await ui_registry.call("PUT", f"organization/robotco/robots/{name}", json={})
        assert status == 201
    await page.reload()
    for name in ("old_one", "old_two"):
        await page.get_by_test_id(f"robots-table-row-robotco+{name}").get_by_role("checkbox").check()
    await page.locator("#delete-robots").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_test_id("delete-list").locator("li")).to_have_text(["robotco+old_one", "robotco+old_two"])
    await dialog.get_by_label('Type "confirm" to delete').fill("confirm")
    await dialog.locator("#confirm-delete").click()
    await expect(page.get_by_text("Deleted 2 robot accounts")).to_be_visible()
    await page.get_by_label("Actions for robotco+builder").click()
    await page.get_by_role("menuitem", name="Delete").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label('Type "confirm" to delete').fill("confirm")
    await dialog.locator("#confirm-delete").click()
    await expect(page.get_by_text("Deleted robot account robotco+builder")).to_be_visible()
    status, body = await ui_registry.call("GET", "browse/organization/robotco/robots")
    assert body["total"] == 0
    assert not await token_works(ui_registry, "robotco+builder", new_token)
    await expect(page.get_by_role("heading", name=re.compile("No robot accounts"))).to_be_visible()
