"""Search: the header box suggests repositories, tags and digests as the user types (arrows and Enter
work), the results page lists each kind, and what the user may not read (bob's private repository)
is not there, exactly as if it did not exist."""
from __future__ import annotations

import re

from playwright.async_api import expect

from tests.ui.conftest import audit


async def test_header_suggestions_and_results_page(open_page, ui_registry):
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository")
    box = page.get_by_role("combobox", name="Search repositories, tags and digests")
    suggestions = page.get_by_role("listbox", name="Search repositories, tags and digests suggestions")
    # Tags, by keyboard: type, arrow down to the second suggestion, Enter.
    await box.fill("v1.")
    tags = suggestions.get_by_role("group", name="Tags").get_by_role("option")
    await expect(tags).to_have_text(["alice/app:v1.1", "alice/app:v1.0"])  # prefix matches, newest first
    await audit(page, "search-suggestions")
    await box.press("ArrowDown")
    await box.press("ArrowDown")
    await expect(box).to_have_attribute("aria-activedescendant", re.compile(r"option-1$"))
    await box.press("Enter")
    await expect(page).to_have_url(re.compile(r"/tag/alice/app/v1\.0$"))
    # A digest by its first hex digits leads to a tag on it.
    digest = ui_registry.digests["v2.0"]
    await box.fill(digest[7:19])
    option = suggestions.get_by_role("group", name="Digests").get_by_role("option")
    await expect(option).to_have_count(1)
    await expect(option).to_contain_text("alice/app@")
    await option.click()
    await expect(page).to_have_url(re.compile(r"/tag/alice/app/v2\.0$"))
    # A repository by name.
    await box.fill("public-ap")
    await suggestions.get_by_role("option", name="alice/public-app").click()
    await expect(page).to_have_url(re.compile(r"/repository/alice/public-app$"))

    # Enter on the text: the results page, every kind.
    await box.fill("app")
    await box.press("Enter")
    await expect(page).to_have_url(re.compile(r"/search\?q=app$"))
    await expect(page.get_by_test_id("results-repositories")).to_contain_text("alice/app")
    await audit(page, "search-results")
    await page.get_by_label("Search the registry").fill("latest")
    await page.get_by_label("Search the registry").press("Enter")
    await expect(page.get_by_test_id("results-tags").get_by_role("link", name="latest")).to_be_visible()

    # bob's private repository: not found, the same answer as a name that does not exist.
    for q in ("secret", "no-such-thing"):
        await visit.goto(f"/search?q={q}")
        await expect(page.get_by_role("heading", name="Nothing found")).to_be_visible()
    await box.fill("bob/sec")
    await expect(page.get_by_role("status")).to_have_text("Nothing found for “bob/sec”")
    await audit(page, "search-nothing")
    status, secret = await ui_registry.call("GET", "search", "alice", params={"q": "secret"})
    status, missing = await ui_registry.call("GET", "search", "alice", params={"q": "no-such-thing"})
    for body in (secret, missing):
        assert body["repositories"] == body["tags"] == body["digests"] == []
    status, body = await ui_registry.call("GET", "search", "bob", params={"q": "secret"})
    assert [r["name"] for r in body["repositories"]] == ["bob/secret"]
