"""Teams and membership: the create-team wizard (name and description, repositories with a role, members
and robots, review and finish), the Team, Members and Collaborators views, setting a team's repository
permissions from its kebab, a team of 45 members paged to the last one (Quay shows 20), adding and
removing members, deleting a team; each result checked through the API."""
from __future__ import annotations

import re

from playwright.async_api import expect

from tests.ui.conftest import audit


async def setup_org(ui_registry, org: str) -> None:
    status, _ = await ui_registry.call("POST", "organization/", json={"name": org})
    assert status == 201
    for repo in ("web", "api"):
        status, _ = await ui_registry.call("POST", "repository", json={"namespace": org, "repository": repo})
        assert status == 201
    status, _ = await ui_registry.call("PUT", f"organization/{org}/robots/deployer", json={"description": "deploys"})
    assert status == 201


async def pick(page, field_id: str, typed: str, option: str) -> None:
    await page.locator(f"#{field_id}").fill(typed)
    await page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}\b")).click()


async def test_create_team_wizard_and_the_three_views(open_page, ui_registry):
    await setup_org(ui_registry, "teamco")
    await ui_registry.make_user("carol")
    status, _ = await ui_registry.call("PUT", "repository/teamco/api/permissions/user/carol", json={"role": "read"})
    assert status == 200  # carol: a collaborator (a direct permission, no team)
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/organization/teamco?tab=teams")
    await page.locator("#create-team").click()
    wizard = page.get_by_role("dialog")
    footer = wizard.locator(".pf-v6-c-wizard__footer")
    next_button = footer.get_by_role("button", name="Next", exact=True)
    await wizard.get_by_label("Team name").fill("Builders!")
    await expect(wizard.get_by_text("Start with a lowercase letter")).to_be_visible()
    await expect(next_button).to_be_disabled()
    await wizard.get_by_label("Team name").fill("builders")
    await wizard.get_by_label("Description").fill("They build <b>things</b>")
    await audit(page, "team-wizard-name")
    await next_button.click()
    # Add to repository: Write on teamco/web.
    await wizard.get_by_label("Permission of builders on teamco/web").select_option("write")
    await audit(page, "team-wizard-repositories")
    await next_button.click()
    # Members: a user and the organisation's robot, picked by typing.
    await pick(page, "team-member-picker", "bo", "bob")
    await pick(page, "team-member-picker", "dep", "teamco+deployer")
    await expect(wizard.get_by_test_id("wizard-members")).to_contain_text("bob (User)")
    await expect(wizard.get_by_test_id("wizard-members")).to_contain_text("teamco+deployer (Robot)")
    await audit(page, "team-wizard-members")
    await next_button.click()
    review = wizard.get_by_test_id("team-review")
    await expect(review).to_contain_text("builders")
    await expect(review).to_contain_text("They build <b>things</b>")  # text, not markup
    await expect(review).to_contain_text("teamco/web: Write")
    await expect(review).to_contain_text("bob, teamco+deployer")
    await audit(page, "team-wizard-review")
    await footer.get_by_role("button", name="Review and finish").click()
    await expect(page.get_by_text("Successfully created new team: builders")).to_be_visible()
    status, body = await ui_registry.call("GET", "organization/teamco/team/builders/members")
    assert sorted(m["name"] for m in body["members"]) == ["bob", "teamco+deployer"]
    status, body = await ui_registry.call("GET", "organization/teamco/team/builders/permissions")
    assert [(p["repository"]["name"], p["role"]) for p in body["permissions"]] == [("teamco/web", "write")]
    status, body = await ui_registry.call("GET", "organization/teamco")
    assert body["teams"]["builders"]["description"] == "They build <b>things</b>"

    # Team view: the counts; then the team's permissions from its kebab, two repositories at once.
    row = page.get_by_test_id("teams-table-row-builders")
    await expect(row).to_contain_text("builders")
    cells = row.locator("td")
    assert (await cells.nth(1).inner_text(), await cells.nth(2).inner_text()) == ("2", "1")
    await audit(page, "organization-teams")
    await page.get_by_label("Actions for builders").click()
    await page.get_by_role("menuitem", name="Set repository permissions").click()
    modal = page.get_by_role("dialog")
    await modal.get_by_test_id("role-table-row-teamco/web").get_by_role("checkbox").check()
    await modal.get_by_test_id("role-table-row-teamco/api").get_by_role("checkbox").check()
    await modal.get_by_label("Permission for the checked repositories").select_option("read")
    await modal.locator("#apply-bulk-role").click()
    await expect(page.get_by_text("Successfully updated repository permission")).to_be_visible()
    await expect(modal.get_by_label("Permission of builders on teamco/api")).to_have_value("read")
    await audit(page, "team-permissions-dialog")
    status, body = await ui_registry.call("GET", "organization/teamco/team/builders/permissions")
    assert {p["repository"]["name"]: p["role"] for p in body["permissions"]} == {"teamco/api": "read", "teamco/web": "read"}
    await modal.get_by_role("button", name="Close").click()

    # Members view: who is in which team; robots only; Collaborators view: carol.
    await page.get_by_role("button", name="Members View").click()
    members = page.get_by_test_id("members-table")
    await expect(members.get_by_test_id("members-table-row-bob")).to_contain_text("builders")
    await expect(members.get_by_test_id("members-table-row-alice")).to_contain_text("owners")
    await page.locator("#members-kind").select_option("robot")
    await expect(members.locator("tbody tr")).to_have_count(1)
    await expect(members.locator("tbody tr")).to_contain_text("teamco+deployer")
    await audit(page, "organization-members")
    await page.get_by_role("button", name="Collaborators View").click()
    await expect(page.get_by_test_id("collaborators-table").locator("tbody tr")).to_have_text([re.compile(r"carol\s*1")])
    await audit(page, "organization-collaborators")

    # Delete the team from its kebab; the owners team cannot be.
    await page.get_by_role("button", name="Team View").click()
    await page.get_by_label("Actions for owners").click()
    owners_delete = page.get_by_role("menuitem", name=re.compile("^Delete"))
    await expect(owners_delete).to_have_attribute("aria-disabled", "true")
    await expect(owners_delete).to_contain_text("cannot be deleted")
    await page.keyboard.press("Escape")
    await page.get_by_label("Actions for builders").click()
    await page.get_by_role("menuitem", name="Delete").click()
    await page.get_by_role("dialog").locator("#confirm-delete").click()
    await expect(page.get_by_text("Deleted team builders")).to_be_visible()
    status, _ = await ui_registry.call("GET", "organization/teamco/team/builders/members")
    assert status == 404


async def test_team_members_page_past_twenty(open_page, ui_registry):
    await setup_org(ui_registry, "bigteam")
    status, _ = await ui_registry.call("PUT", "organization/bigteam/team/crowd", json={"role": "member"})
    assert status == 201
    # 44 users in the team, written directly (through the API this would be 44 sign-ups).
    await ui_registry.sql(
        "INSERT INTO users (username, password_hash, email) "
        "SELECT 'crowd' || lpad(n::text, 2, '0'), NULL, NULL FROM generate_series(1, 44) n")
    await ui_registry.sql(
        "INSERT INTO team_members (team_id, user_id) SELECT t.id, u.id FROM teams t JOIN namespaces n ON n.id = t.namespace_id, users u "
        "WHERE n.name = 'bigteam' AND t.name = 'crowd' AND u.username LIKE 'crowd%'")
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/organization/bigteam/teams/crowd")
    table = page.get_by_test_id("team-members")
    rows = table.locator("tbody tr")
    await expect(rows).to_have_count(25)
    await page.get_by_role("button", name="Go to next page").first.click()
    await expect(rows).to_have_count(19)
    await expect(rows.last).to_contain_text("crowd44")  # the 44th member, past Quay's 20
    await audit(page, "team-members")
    # Add the robot and remove a member; both checked through the API.
    await pick(page, "add-member", "bigteam+dep", "bigteam+deployer")
    await page.locator("#add-member-submit").click()
    await expect(page.get_by_text("Added bigteam+deployer to crowd")).to_be_visible()
    await page.get_by_label("Filter members by name").fill("crowd07")
    await expect(rows).to_have_count(1)
    await page.get_by_label("Actions for crowd07").click()
    await page.get_by_role("menuitem", name="Remove from team").click()
    await page.get_by_role("dialog").locator("#confirm-delete").click()
    await expect(page.get_by_text("Removed crowd07 from crowd")).to_be_visible()
    status, body = await ui_registry.call("GET", "browse/organization/bigteam/team/crowd/members", params={"limit": 100})
    names = {m["name"] for m in body["members"]}
    assert body["total"] == 44 and "bigteam+deployer" in names and "crowd07" not in names
    # The team's repository permissions, set from the team page.
    await page.get_by_label("Permission of crowd on bigteam/api").select_option("admin")
    await expect(page.get_by_text("Successfully updated repository permission")).to_be_visible()
    status, body = await ui_registry.call("GET", "repository/bigteam/api/permissions/team/crowd")
    assert body["role"] == "admin"
