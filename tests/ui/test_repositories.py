"""Repositories: create (names Quay breaks on: build, trigger, tag), filter (substring and regex),
sort and page on the server, make public/private, delete one or many with "confirm"; each result
checked through the API."""
from __future__ import annotations

import re

from playwright.async_api import expect

from tests.ui.conftest import audit


async def create_through_ui(page, name: str, *, public: bool = False, description: str = "") -> None:
    await page.locator("#create-repository").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Repository name").fill(name)
    if public:
        await dialog.get_by_label("Public").check()
    if description:
        await dialog.get_by_label("Description (Markdown)").fill(description)
    await dialog.locator("#create-submit").click()
    await expect(page).to_have_url(re.compile(rf"/repository/alice/{name}$"))


async def test_create_repositories_named_like_quay_routes(open_page, ui_registry):
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository")
    await page.locator("#create-repository").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Repository name").fill("Bad Name")
    await expect(dialog.get_by_text("Use lowercase letters")).to_be_visible()
    await expect(dialog.locator("#create-submit")).to_be_disabled()
    await audit(page, "repository-create-dialog")
    await dialog.get_by_role("button", name="Cancel").click()
    for name in ("build", "trigger", "tag"):
        await visit.goto("/repository")
        await create_through_ui(page, name, public=name == "tag")
        await expect(page.get_by_role("heading", level=1)).to_contain_text(f"alice/{name}")
        status, body = await ui_registry.call("GET", f"repository/alice/{name}")
        assert status == 200 and body["is_public"] is (name == "tag"), body
    # The tabs of a repository named "tag" are its own, not a tag page.
    await visit.goto("/repository/alice/tag?tab=tags")
    await expect(page.get_by_test_id("tags-table")).to_be_visible()
    await expect(page.get_by_text("This repository has no tags yet.")).to_be_visible()


async def test_filter_sort_page_visibility_and_delete(open_page, ui_registry):
    for index in range(12):
        status, _ = await ui_registry.call("POST", "repository", json={"namespace": "alice", "repository": f"bulk-{index:02d}"})
        assert status == 201
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository?perPage=10")
    table = page.get_by_test_id("repositories-table")
    rows = table.locator("tbody tr")
    await expect(rows).to_have_count(10)

    search = page.get_by_label("Filter repositories by name")
    await search.fill("bulk-1")
    await expect(rows).to_have_count(2)  # bulk-10, bulk-11: filtered on the server
    await expect(page).to_have_url(re.compile(r"filter=bulk-1"))
    await page.get_by_label("Regular expression").check()
    await search.fill("^alice/bulk-0[0-2]$")
    await expect(rows).to_have_count(3)
    await search.fill("bulk-(")
    await expect(page.get_by_test_id("filter-error")).to_contain_text("Invalid regular expression")
    await search.fill("^alice/bulk-")
    await expect(rows).to_have_count(10)
    # Sort by name, descending, then page 2 of 12.
    await table.get_by_role("button", name="Name").click()
    await expect(rows.first).to_contain_text("alice/bulk-11")
    await page.get_by_role("button", name="Go to next page").first.click()
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("alice/bulk-01")
    status, body = await ui_registry.call("GET", "browse/repositories", params={"filter": "^alice/bulk-", "regex": "true",
                                                                                  "order": "desc", "limit": 10, "page": 2})
    assert [r["name"] for r in body["repositories"]] == ["bulk-01", "bulk-00"] and body["total"] == 12

    # Make one public from its kebab, then delete two at once, typing "confirm".
    await page.get_by_label("Actions for alice/bulk-01").click()
    await page.get_by_role("menuitem", name="Make public").click()
    await expect(page.get_by_text("Made alice/bulk-01 public")).to_be_visible()
    status, body = await ui_registry.call("GET", "repository/alice/bulk-01")
    assert body["is_public"] is True
    await rows.filter(has_text="alice/bulk-01").get_by_role("checkbox").check()
    await rows.filter(has_text="alice/bulk-00").get_by_role("checkbox").check()
    await page.locator("#repositories-actions").click()
    await page.locator("#bulk-delete").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_test_id("delete-list")).to_contain_text("alice/bulk-00")
    await expect(dialog.locator("#confirm-delete")).to_be_disabled()
    await audit(page, "repositories-delete-dialog")
    await dialog.get_by_label('Type "confirm" to delete').fill("confirm")
    await dialog.locator("#confirm-delete").click()
    await expect(page.get_by_text("Deleted 2 repositories")).to_be_visible()
    for name in ("bulk-00", "bulk-01"):
        status, _ = await ui_registry.call("GET", f"repository/alice/{name}")
        assert status == 404
    await expect(rows).to_have_count(10)  # the page went back to what is left
    await audit(page, "repositories")
