"""Organisations: create (by keyboard too), the list with its counts, sorting that is right for dates and
sizes (Quay sorts dates as text), settings (e-mail and the time-machine window from
TAG_EXPIRATION_OPTIONS), delete one from its kebab or many with the search box and "confirm"; each
result checked through the API."""
from __future__ import annotations

import datetime as dt
import re

from playwright.async_api import expect

from tests.helpers import push_image
from tests.ui.conftest import audit


async def make_org(ui_registry, name: str, user: str = "alice") -> None:
    status, body = await ui_registry.call("POST", "organization/", user, json={"name": name, "email": f"{name}@example.com"})
    assert status == 201, body


async def test_create_settings_and_delete_organizations(open_page, ui_registry):
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/organization")
    # Keyboard only: the button, the name, Enter.
    await page.locator("#create-organization").focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_label("Organisation name")).to_be_focused()
    await page.keyboard.type("Bad Name")
    await expect(dialog.get_by_text("Use lowercase letters")).to_be_visible()
    await expect(dialog.locator("#create-org-submit")).to_be_disabled()
    await audit(page, "organization-create-dialog")
    await dialog.get_by_label("Organisation name").fill("acme-ui")
    await dialog.get_by_label("Administrator e-mail").fill("ops@acme.example")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/organization/acme-ui$"))
    await expect(page.get_by_text("Successfully created organization acme-ui")).to_be_visible()
    status, body = await ui_registry.call("GET", "organization/acme-ui")
    assert status == 200 and body["is_admin"] and body["email"] == "ops@acme.example"

    # The list: alice's row with its counts.
    await visit.goto("/organization?filter=acme-ui")
    row = page.get_by_test_id("organizations-table-row-acme-ui")
    await expect(row).to_contain_text("ops@acme.example")
    cells = row.locator("td")
    texts = [await cells.nth(i).inner_text() for i in range(await cells.count())]
    assert texts[1:7] == ["acme-ui", "ops@acme.example", "0", "1", "1", "0"], texts  # repositories, teams, members, robots
    await audit(page, "organizations")

    # Settings: e-mail and the time machine (labels from TAG_EXPIRATION_OPTIONS: 0s, 1w, 30d, 365d).
    await visit.goto("/organization/acme-ui?tab=settings")
    select = page.get_by_label("Time machine")
    await expect(select.locator("option")).to_have_text(["Never", "1 week", "1 month", "1 year"])
    await expect(select).to_have_value(str(7 * 86400))
    await select.select_option(label="1 month")
    await page.get_by_label("Organisation e-mail").fill("team@acme.example")
    await page.locator("#save-org-settings").click()
    await expect(page.get_by_text("Saved the settings of acme-ui")).to_be_visible()
    status, body = await ui_registry.call("GET", "organization/acme-ui")
    assert body["tag_expiration_s"] == 30 * 86400 and body["email"] == "team@acme.example"
    await audit(page, "organization-settings")

    # Delete many: check two, the trash button, search what is scheduled, type "confirm".
    for name in ("doomed-one", "doomed-two", "doomed-three"):
        await make_org(ui_registry, name)
    await visit.goto("/organization?filter=doomed-")
    table = page.get_by_test_id("organizations-table")
    await expect(table.locator("tbody tr")).to_have_count(3)
    await expect(page.locator("#delete-organizations")).to_have_attribute("aria-disabled", "true")
    await page.get_by_test_id("organizations-table-row-doomed-one").get_by_role("checkbox").check()
    await page.get_by_test_id("organizations-table-row-doomed-two").get_by_role("checkbox").check()
    await page.locator("#delete-organizations").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_test_id("delete-list").locator("li")).to_have_count(2)
    await dialog.get_by_label("Search what is scheduled for deletion").fill("two")
    await expect(dialog.get_by_test_id("delete-list").locator("li")).to_have_text(["doomed-two"])
    await dialog.get_by_label("Search what is scheduled for deletion").fill("three")
    await expect(dialog.get_by_test_id("delete-list")).to_contain_text("Nothing scheduled matches")
    await dialog.get_by_label("Search what is scheduled for deletion").fill("")
    await expect(dialog.locator("#confirm-delete")).to_be_disabled()
    await audit(page, "organizations-delete-dialog")
    await dialog.get_by_label('Type "confirm" to delete').fill("confirm")
    await dialog.locator("#confirm-delete").click()
    await expect(page.get_by_text("Deleted 2 organisations")).to_be_visible()
    for name, gone in (("doomed-one", True), ("doomed-two", True), ("doomed-three", False)):
        status, _ = await ui_registry.call("GET", f"organization/{name}")
        assert (status == 404) is gone, name
    await expect(table.locator("tbody tr")).to_have_count(1)
    # One from its kebab.
    await page.get_by_label("Actions for doomed-three").click()
    await page.get_by_role("menuitem", name="Delete").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label('Type "confirm" to delete').fill("confirm")
    await dialog.locator("#confirm-delete").click()
    await expect(page.get_by_text("Deleted organisation doomed-three")).to_be_visible()
    status, _ = await ui_registry.call("GET", "organization/doomed-three")
    assert status == 404
    await expect(page.get_by_role("heading", name="Nothing matches")).to_be_visible()


async def test_dates_and_sizes_sort_as_dates_and_sizes(open_page, ui_registry):
    # Three organisations whose formatted dates and sizes sort differently as text than as values.
    changed = {"sort-b": dt.datetime(2026, 2, 2, 9, tzinfo=dt.UTC), "sort-c": dt.datetime(2025, 12, 25, 9, tzinfo=dt.UTC),
               "sort-a": dt.datetime(2026, 1, 10, 9, tzinfo=dt.UTC)}
    layers = {"sort-b": 1, "sort-c": 10, "sort-a": 5}  # 2 KiB layers: about 2.x KiB, 20 KiB, 10 KiB
    for name in changed:
        await make_org(ui_registry, name)
        pusher = await ui_registry.pusher("alice", f"{name}/app")
        try:
            await push_image(pusher, f"{name}/app", "v1", layers=layers[name])
        finally:
            await pusher.http.close()
        await ui_registry.sql("UPDATE tags SET lifetime_start = $2 FROM repositories r "
                              "WHERE r.id = tags.repository_id AND r.full_name = $1",
                              f"{name}/app", changed[name])
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/organization?filter=%5Esort-&regex=true")
    table = page.get_by_test_id("organizations-table")
    names = table.locator("tbody tr td:nth-child(2)")
    await expect(names).to_have_text(["sort-a", "sort-b", "sort-c"])
    await table.get_by_role("button", name="Last modified").click()  # newest first
    await expect(names).to_have_text(["sort-b", "sort-a", "sort-c"])
    await expect(table.locator("tbody tr td:nth-child(8)")).to_have_text(
        ["Feb 2, 2026, 9:00 AM", "Jan 10, 2026, 9:00 AM", "Dec 25, 2025, 9:00 AM"])
    await table.get_by_role("button", name="Last modified").click()
    await expect(names).to_have_text(["sort-c", "sort-a", "sort-b"])
    await table.get_by_role("button", name="Size").click()  # largest first
    await expect(names).to_have_text(["sort-c", "sort-a", "sort-b"])
    sizes = await table.locator("tbody tr td:nth-child(9)").all_inner_texts()
    assert sizes[0].endswith("KiB") and sorted(sizes) != sizes, sizes  # as text they would sort otherwise
    await table.get_by_role("button", name="Size").click()
    await expect(names).to_have_text(["sort-b", "sort-a", "sort-c"])
    await expect(page).to_have_url(re.compile(r"sort=size"))
    status, body = await ui_registry.call("GET", "browse/organizations", params={"filter": "^sort-", "regex": "true", "sort": "size"})
    assert [o["name"] for o in body["organizations"]] == ["sort-b", "sort-a", "sort-c"]
    assert body["organizations"][0]["size"] < body["organizations"][1]["size"] < body["organizations"][2]["size"]


async def test_the_list_fits_a_1366_by_768_window(open_page, ui_registry):
    # The widest row there is: a long name without a place to break, a long e-mail, a date under Last
    # modified and a size. With the sidebar open (it is, from 1200 px up) the row's Settings link and
    # kebab are inside the window, and nothing is pushed out sideways.
    name = "widelayoutorganisationwithoutbreaks"
    email = "registry-operations-team@wide-layout.example"
    status, body = await ui_registry.call("POST", "organization/", json={"name": name, "email": email})
    assert status == 201, body
    pusher = await ui_registry.pusher("alice", f"{name}/app")
    try:
        await push_image(pusher, f"{name}/app", "v1", layers=2)
    finally:
        await pusher.http.close()
    visit = await open_page("alice")
    page = visit.page
    await page.set_viewport_size({"width": 1366, "height": 768})
    await visit.goto(f"/organization?filter={name}")
    await expect(page.get_by_role("navigation", name="Sections")).to_be_visible()
    row = page.get_by_test_id(f"organizations-table-row-{name}")
    await expect(row).to_contain_text(email)
    await expect(row).to_contain_text("KiB")
    for control in (row.get_by_label(f"Settings of {name}"), row.get_by_label(f"Actions for {name}")):
        await expect(control).to_be_visible()
        box = await control.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1366, box
        assert box["y"] >= 0 and box["y"] + box["height"] <= 768, box
    beyond = await page.evaluate("(() => { const edge = document.querySelector('main').getBoundingClientRect().right; "
                                 "return [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > edge + 1)"
                                 ".map(e => `${e.tagName}.${e.className}`); })()")
    assert beyond == [], beyond  # nothing sticks out of the page's main area (which does not scroll sideways)
    await audit(page, "organizations-1366x768")
