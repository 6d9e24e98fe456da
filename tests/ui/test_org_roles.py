"""Per role (owner, team admin, plain member, a signed-in user outside the organisation): what the UI
offers on an organisation matches what the API allows that same user. Sections and actions the user
may not use are shown disabled with the reason, not hidden; each is then tried through the API."""
from __future__ import annotations

import itertools

from playwright.async_api import expect

from tests.ui.conftest import audit

SECTIONS = {"teams": "Teams and membership", "robots": "Robot accounts", "defaults": "Default permissions",
            "logs": "Usage logs", "settings": "Settings"}
_names = itertools.count(1)


async def api_allows(ui_registry, user: str) -> dict[str, bool]:
    """Whether the API lets `user` do what each section and action of the page does."""
    async def ok(method: str, path: str, **kwargs) -> bool:
        status, _ = await ui_registry.call(method, path, user, **kwargs)
        assert status in (200, 201, 403), (method, path, user, status)
        return status < 300

    return {
        "teams": await ok("GET", "browse/organization/roleco/teams"),
        "robots": await ok("GET", "browse/organization/roleco/robots"),
        "defaults": await ok("GET", "organization/roleco/prototypes"),
        "logs": await ok("GET", "organization/roleco/logs"),
        "settings": await ok("PUT", "organization/roleco", json={"email": "roles@example.com"}),
        "create_team": await ok("POST", "organization/roleco/team/", json={"name": f"made{next(_names)}", "role": "member"}),
    }


async def test_each_role_is_offered_what_the_api_allows(open_page, ui_registry):
    status, _ = await ui_registry.call("POST", "organization/", json={"name": "roleco"})
    assert status == 201
    status, _ = await ui_registry.call("POST", "repository", json={"namespace": "roleco", "repository": "app"})
    assert status == 201
    users = {"owner": "alice"}
    for role, name, team_role in (("team admin", "role-admin", "admin"), ("member", "role-member", "member")):
        users[role] = await ui_registry.make_user(name)
        team = name.replace("-", "_")
        status, _ = await ui_registry.call("PUT", f"organization/roleco/team/{team}", json={"role": team_role})
        assert status == 201
        status, _ = await ui_registry.call("PUT", f"organization/roleco/team/{team}/members/{name}")
        assert status == 200
    users["outsider"] = await ui_registry.make_user("role-outsider")
    expected = {  # what each role may do, as the organisation's rules say
        "owner": dict.fromkeys([*SECTIONS, "create_team"], True),
        "team admin": dict.fromkeys([*SECTIONS, "create_team"], True),
        "member": {**dict.fromkeys([*SECTIONS, "create_team"], False), "teams": True},
        "outsider": dict.fromkeys([*SECTIONS, "create_team"], False),
    }
    for role, user in users.items():
        allowed = await api_allows(ui_registry, user)
        assert allowed == expected[role], (role, allowed)
        visit = await open_page(user)
        page = visit.page
        await visit.goto("/organization/roleco")
        await expect(page.get_by_role("heading", level=1)).to_contain_text("roleco")
        offered = {}
        for key, title in SECTIONS.items():
            tab = page.get_by_role("tab", name=title)
            offered[key] = await tab.get_attribute("aria-disabled") != "true"
        # The repositories of the organisation are listed for everyone (the public ones for outsiders).
        await expect(page.get_by_role("tab", name="Repositories")).to_have_attribute("aria-selected", "true")
        if offered["teams"]:
            await page.get_by_role("tab", name=SECTIONS["teams"]).click()
            create = page.locator("#create-team")
            await expect(create).to_be_visible()
            offered["create_team"] = await create.get_attribute("aria-disabled") != "true"
            if not offered["create_team"]:
                await expect(create).to_have_accessible_description("Only administrators of roleco can create teams")
                await expect(page.get_by_test_id("teams-table").locator("tbody tr").first).to_be_visible()
                await page.get_by_label("Actions for owners").click()
                for item in ("Set repository permissions", "Delete"):
                    await expect(page.get_by_role("menuitem", name=item)).to_have_attribute("aria-disabled", "true")
                await expect(page.get_by_role("menuitem", name="View team members")).to_be_visible()
                await page.keyboard.press("Escape")
                await audit(page, "organization-teams-member")
        else:
            offered["create_team"] = False
            await page.get_by_role("tab", name=SECTIONS["teams"]).hover()
            await expect(page.get_by_role("tooltip")).to_have_text("Only members of roleco can see its teams")
        assert offered == allowed, (role, offered, allowed)
        if role == "outsider":
            await audit(page, "organization-outsider")
        # The organisations list: a row for those in it; deleting only for administrators.
        await visit.goto("/organization?filter=roleco")
        if role == "outsider":
            await expect(page.get_by_role("heading", name="Nothing matches")).to_be_visible()
            status, _ = await ui_registry.call("DELETE", "organization/roleco", user)
            assert status == 403
        else:
            row = page.get_by_test_id("organizations-table-row-roleco")
            admin = expected[role]["settings"]
            checkbox = expect(row.get_by_role("checkbox"))
            settings = row.get_by_label("Settings of roleco")
            # Robots are for administrators: a plain member is given no robot count, and the cell shows a dash.
            status, body = await ui_registry.call("GET", "browse/organizations", user, params={"filter": "roleco"})
            assert status == 200 and [o["robots"] for o in body["organizations"]] == [0 if admin else None], (role, body)
            await expect(row.locator("td").nth(6)).to_have_text("0" if admin else "—")  # checkbox, name, e-mail, 3 counts, robots
            if admin:
                await checkbox.to_be_enabled()
                await expect(settings).to_have_attribute("href", "/organization/roleco?tab=settings")
            else:
                await checkbox.to_be_disabled()
                status, _ = await ui_registry.call("DELETE", "organization/roleco", user)
                assert status == 403
                await expect(settings).to_have_attribute("aria-disabled", "true")
                await expect(settings).to_have_accessible_description("Only administrators of roleco can change its settings")
