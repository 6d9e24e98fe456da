"""The Tags tab, tag details and tag history: server-side filter (substring, regex), sort and paging;
manifest lists expanded to platforms; regions; kebab actions (labels, expiration, delete) and bulk
actions with the seed's exact messages; referrers grouped by artifact type; restore and permanent
delete in history; untrusted text shown as text. Each result is checked through the API."""
from __future__ import annotations

import re

from playwright.async_api import expect

from tests.helpers import push_image
from tests.ui.conftest import audit


async def tag_many(reg, repository: str, names: list[str], digest: str) -> None:
    for name in names:
        status, body = await reg.call("PUT", f"repository/{repository}/tag/{name}", json={"manifest_digest": digest})
        assert status == 201, body


async def pushed(reg, repository: str, *tags: str) -> dict[str, str]:
    pusher = await reg.pusher("alice", repository)
    try:
        return {tag: (await push_image(pusher, repository, tag))[0] for tag in tags}
    finally:
        await pusher.http.close()


async def test_tags_tab_filters_sorts_pages_and_expands_platforms(open_page, ui_registry):
    digest = (await pushed(ui_registry, "alice/paged", "latest"))["latest"]
    await tag_many(ui_registry, "alice/paged", [f"rel-{n:02d}" for n in range(30)], digest)
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository/alice/paged?tab=tags")
    table = page.get_by_test_id("tags-table")
    rows = table.locator("tbody > tr:first-child")
    await expect(rows).to_have_count(25)
    await expect(rows.first).to_contain_text("latest")
    await expect(rows.first).to_contain_text("us")  # the region holding every blob
    await expect(rows.first).to_contain_text("Not scanned")
    # The short digest's tooltip (mounted on the first hover) shows the whole digest, and hides again.
    short = rows.first.get_by_text(digest[:19])
    await short.hover()
    await expect(page.get_by_role("tooltip")).to_have_text(digest)
    await page.get_by_label("Filter tags by name").hover()
    await expect(page.get_by_role("tooltip")).to_have_count(0)
    await short.focus()  # and by keyboard
    await expect(page.get_by_role("tooltip")).to_have_text(digest)
    search = page.get_by_label("Filter tags by name")
    await search.fill("rel-2")
    await expect(rows).to_have_count(10)
    await page.get_by_label("Regular expression").check()
    await search.fill(r"^rel-0[0-4]$")
    await expect(rows).to_have_count(5)
    await table.get_by_role("button", name="Tag").click()  # name, descending
    await expect(rows.first).to_contain_text("rel-04")
    status, body = await ui_registry.call("GET", "browse/repository/alice/paged/tags",
                                          params={"filter": "^rel-0[0-4]$", "regex": "true", "order": "desc"})
    assert [t["name"] for t in body["tags"]] == ["rel-04", "rel-03", "rel-02", "rel-01", "rel-00"]
    await search.fill("")
    await page.get_by_role("button", name="Go to next page").first.click()
    await expect(rows).to_have_count(6)  # 31 tags, 25 a page
    await expect(page).to_have_url(re.compile(r"page=2"))

    # A manifest list expands to its platforms.
    await visit.goto("/repository/alice/app?tab=tags")
    multi = page.get_by_test_id("tag-row-multi")
    await expect(multi).to_contain_text("2 platforms")
    await multi.get_by_label("Platforms of multi").get_by_role("button").click()
    platforms = page.get_by_role("grid", name="Platforms of multi").or_(page.get_by_role("table", name="Platforms of multi"))
    await expect(platforms).to_contain_text("linux/arm64/v8")
    await expect(platforms).to_contain_text(ui_registry.digests["v1.0"])
    await expect(page.get_by_test_id("tag-row-v2.0")).to_contain_text("Signatures: 1")
    await audit(page, "repository-tags")


async def test_tag_kebab_and_bulk_actions_with_the_seed_messages(open_page, ui_registry):
    digests = await pushed(ui_registry, "alice/tagged", "one", "two", "three", "four")
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository/alice/tagged?tab=tags")
    await expect(page.get_by_test_id("tag-row-one")).to_be_visible()

    # Labels: a malformed one is refused with the seed's message; a good one is created.
    await page.get_by_label("Actions for one").click()
    await page.get_by_role("menuitem", name="Edit labels").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("New label").fill("novalue")
    await dialog.locator("#add-label").click()
    await expect(dialog.get_by_test_id("label-error")).to_have_text(
        re.compile(r"(Danger alert:)?Invalid label format, must be key value separated by =$"))
    await dialog.get_by_label("New label").fill("env=prod")
    await dialog.locator("#add-label").click()
    await expect(dialog.get_by_test_id("label-list")).to_contain_text("env=prod")
    await audit(page, "tag-labels-dialog")
    await dialog.locator("#save-labels").click()
    await expect(page.get_by_text("Created labels successfully")).to_be_visible()
    status, body = await ui_registry.call("GET", f"repository/alice/tagged/manifest/{digests['one']}/labels")
    assert [(label["key"], label["value"]) for label in body["labels"]] == [("env", "prod")]

    # Expiration of one tag.
    await page.get_by_label("Actions for one").click()
    await page.get_by_role("menuitem", name="Change expiration").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Date").fill("2030-01-02")
    await dialog.get_by_label("Time").fill("10:30")
    await audit(page, "tag-expiration-dialog")
    await dialog.locator("#save-expiration").click()
    await expect(page.get_by_text("Successfully set expiration for tag one to Jan 2, 2030, 10:30 AM")).to_be_visible()
    status, body = await ui_registry.call("GET", "repository/alice/tagged/tag/one")
    assert body["expiration"] == "2030-01-02T10:30:00+00:00"

    # Bulk expiration, then bulk delete with "confirm".
    rows = page.get_by_test_id("tags-table").locator("tbody > tr:first-child")
    for name in ("two", "three"):
        await rows.filter(has_text=name).get_by_role("checkbox").check()
    await page.locator("#tags-actions").click()
    await page.locator("#bulk-expiration").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Date").fill("2031-03-04")
    await dialog.get_by_label("Time").fill("08:00")
    await dialog.locator("#save-expiration").click()
    await expect(page.get_by_text("Successfully set expiration for 2 tags to Mar 4, 2031, 8:00 AM")).to_be_visible()
    for name in ("two", "three"):
        status, body = await ui_registry.call("GET", f"repository/alice/tagged/tag/{name}")
        assert body["expiration"] == "2031-03-04T08:00:00+00:00", name
    await page.locator("#tags-actions").click()
    await page.locator("#bulk-delete-tags").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label('Type "confirm" to delete').fill("confirm")
    await dialog.locator("#confirm-delete").click()
    await expect(page.get_by_text("Deleted 2 tags")).to_be_visible()
    await expect(page.get_by_test_id("tag-row-two")).to_have_count(0)
    for name in ("two", "three"):
        status, _ = await ui_registry.call("GET", f"repository/alice/tagged/tag/{name}")
        assert status == 404, name

    # Delete one tag from its kebab.
    await page.get_by_label("Actions for four").click()
    await page.get_by_role("menuitem", name="Delete").click()
    await page.get_by_role("dialog").locator("#confirm-delete").click()
    await expect(page.get_by_text("Deleted tag four")).to_be_visible()
    status, _ = await ui_registry.call("GET", "repository/alice/tagged/tag/four")
    assert status == 404
    status, body = await ui_registry.call("GET", "browse/repository/alice/tagged/tags")
    assert [t["name"] for t in body["tags"]] == ["one"]


async def test_tag_details_referrers_and_untrusted_text(open_page, ui_registry):
    digest = ui_registry.digests["v2.0"]
    for label in ("note=<script>alert('label')</script>", "link=javascript:alert('label')"):
        status, _ = await ui_registry.call("POST", f"repository/alice/app/manifest/{digest}/labels", json={"label": label})
        assert status == 201
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository/alice/app?tab=tags")
    await page.get_by_role("link", name="v2.0", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/tag/alice/app/v2\.0$"))
    details = page.get_by_test_id("tag-details")
    await expect(details).to_contain_text(digest)
    await expect(details).to_contain_text("alice/app")
    labels = page.get_by_test_id("tag-labels")
    await expect(labels).to_contain_text("note=<script>alert('label')</script>")  # shown as text
    await expect(labels).to_contain_text("link=javascript:alert('label')")
    assert await labels.locator("script, a").count() == 0
    host = ui_registry.host
    for command in (f"podman pull {host}/alice/app:v2.0", f"docker pull {host}/alice/app@{digest}"):
        await expect(page.locator(f"input[value='{command}']")).to_have_count(1)
    await expect(page.get_by_role("grid", name="Layers").or_(page.get_by_role("table", name="Layers")).locator("tbody tr")).to_have_count(2)
    group = page.get_by_test_id("referrer-group")
    await expect(group).to_have_count(1)
    await expect(group).to_contain_text("Signatures")
    await expect(group).to_contain_text("application/vnd.dev.cosign.artifact.sig.v1+json")
    await expect(group).to_contain_text(ui_registry.digests["signature"])
    await expect(group).to_contain_text("<script>alert('annotation')</script>")
    assert await group.locator("script").count() == 0
    status, body = await ui_registry.call("GET", f"browse/repository/alice/app/manifest/{digest}")
    assert [g["artifact_type"] for g in body["referrers"]] == ["application/vnd.dev.cosign.artifact.sig.v1+json"]
    await audit(page, "tag-details")
    await page.get_by_role("link", name="Tags", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/repository/alice/app\?tab=tags$"))


async def test_tag_history_search_restore_and_permanent_delete(open_page, ui_registry):
    first = (await pushed(ui_registry, "alice/history", "app"))["app"]
    second = (await pushed(ui_registry, "alice/history", "app"))["app"]  # moves app: the first row ends
    await pushed(ui_registry, "alice/history", "other")
    status, _ = await ui_registry.call("DELETE", "repository/alice/history/tag/other")
    assert status == 204
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository/alice/history?tab=history")
    table = page.get_by_test_id("history-table")
    await expect(table.locator("tbody tr")).to_have_count(3)
    await page.get_by_label("Search history by tag name").fill("app")
    await expect(table.locator("tbody tr")).to_have_count(2)
    # A date range before any change shows nothing; today's shows them again.
    await page.get_by_label("From date").fill("2020-01-01")
    await page.get_by_label("To date").fill("2020-01-31")
    await expect(page.get_by_text("No tag changed in this period.")).to_be_visible()
    today = await page.evaluate("new Date().toISOString().slice(0, 10)")
    await page.get_by_label("From date").fill(today)
    await page.get_by_label("To date").fill(today)
    await expect(table.locator("tbody tr")).to_have_count(2)
    await audit(page, "repository-history")

    # Restore app to its first manifest.
    await page.get_by_label(f"Restore app to {first}").click()
    await expect(page.get_by_text(f"Restored app to {first[:19]}")).to_be_visible()
    status, body = await ui_registry.call("GET", "repository/alice/history/tag/app")
    assert body["manifest_digest"] == first

    # Permanently delete the ended row of `other`: restoring it is then refused.
    await page.get_by_label("Search history by tag name").fill("other")
    await expect(table.locator("tbody tr")).to_have_count(1)
    other_history = await ui_registry.call("GET", "repository/alice/history/tag/", params={"specificTag": "other"})
    other_digest = other_history[1]["tags"][0]["manifest_digest"]
    await page.get_by_label(f"Permanently delete other at {other_digest}").click()
    await page.get_by_role("dialog").locator("#confirm-delete").click()
    await expect(page.get_by_text("Permanently deleted other")).to_be_visible()
    status, body = await ui_registry.call("POST", "repository/alice/history/tag/other/restore", json={"manifest_digest": other_digest})
    assert status == 400 and body["error_type"] == "outside_time_machine"
    assert second != first
