"""Repository Settings → Events and notifications, and an organisation's Settings → Notifications and
Quota, driven in Chromium against `meridian up` (which runs the notifier): create a webhook, see its
secret, test it (the test's HTTP receiver gets the sample), read its deliveries, reset it once it
disabled itself, delete it; set a quota with limits and see the usage bar; sizes in the lists. Every
action is checked through the API."""
from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest_asyncio
from aiohttp import web
from playwright.async_api import expect

from shared.embedded import free_port
from tests.helpers import eventually, push_image
from tests.ui.conftest import audit

# What the toasts cover: the masthead, and the text of the page's headings and tabs (their text, not
# their boxes, which span the whole width).
COVERED_BY_TOASTS = """() => {
  const group = document.querySelector('[data-testid=toasts]').getBoundingClientRect();
  const hit = (r) => r.width > 0 && r.left < group.right && r.right > group.left && r.top < group.bottom && r.bottom > group.top;
  const text = (e) => { const range = document.createRange(); range.selectNodeContents(e); return range.getBoundingClientRect(); };
  const covered = [...document.querySelectorAll('main h1, main h2, main h3, main [role=tab]')].filter((e) => hit(text(e)))
    .map((e) => e.textContent.trim());
  if (hit(document.querySelector('.pf-v6-c-masthead').getBoundingClientRect())) covered.push('the masthead');
  return covered;
}"""


@pytest_asyncio.fixture
async def receiver():
    received: list[dict] = []

    async def handle(request: web.Request) -> web.Response:
        received.append({"path": request.path, "headers": dict(request.headers), "body": await request.read()})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", received
    await runner.cleanup()


async def test_repository_events_and_notifications(open_page, ui_registry, receiver):
    url, received = receiver
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository/alice/app?tab=settings")
    await expect(page.get_by_role("heading", name="Events and notifications")).to_be_visible()

    # A refused target: the API's reason shows in the dialog, nothing is made.
    visit.problems.allow(400)
    await page.locator("#create-notification").click()
    await page.get_by_label("Webhook URL").fill("http://10.0.0.1/hook")
    await page.locator("#save-notification").click()
    await expect(page.get_by_test_id("create-notification-error")).to_contain_text("private or reserved address")
    status, body = await ui_registry.call("GET", "repository/alice/app/notification/")
    assert body["notifications"] == []

    # A webhook for pushes of v* tags.
    await page.get_by_label("Webhook URL").fill(f"{url}/hook")
    await page.get_by_label("Only for tags matching").fill("v*")
    await page.get_by_label("Title (optional)").fill("CI hook")
    await audit(page, "notification-create")
    await page.locator("#save-notification").click()
    secret = page.get_by_test_id("notification-secret")
    await expect(secret).to_be_visible()
    status, body = await ui_registry.call("GET", "repository/alice/app/notification/")
    [made] = body["notifications"]
    assert made["title"] == "CI hook" and made["event"] == "repo_push" and made["config"] == {"url": f"{url}/hook"}
    assert made["event_config"] == {"tags": ["v*"]}
    await expect(secret.locator("input")).to_have_value(made["secret"])
    await page.locator("#close-secret").click()
    table = page.get_by_test_id("notifications-table")
    await expect(table).to_contain_text("CI hook")
    await expect(table).to_contain_text("Enabled")
    await audit(page, "repository-notifications")

    # Test: the notifier of `meridian up` sends a sample, and the deliveries show it.
    await page.get_by_label("Test CI hook").click()
    await eventually(lambda: asyncio.sleep(0, received), what="the test delivery")
    sample = json.loads(received[0]["body"])
    assert sample["repository"] == "alice/app" and sample["updated_tags"] == ["latest"]
    assert received[0]["headers"]["X-Meridian-Signature-256"].startswith("sha256=")
    await page.get_by_label("Deliveries of CI hook").click()
    deliveries = page.get_by_test_id("deliveries-table")
    await expect(deliveries).to_contain_text("Delivered 200")
    await expect(deliveries).to_contain_text("(test)")
    await audit(page, "notification-deliveries")
    await page.locator("#close-deliveries").click()

    # A notification that disabled itself shows why; Reset enables it again.
    conn = await asyncpg.connect(ui_registry.dsn)
    try:
        await conn.execute("UPDATE notifications SET number_of_failures = 3, disabled_at = now(), "
                           "disabled_reason = 'disabled after 3 events in a row could not be delivered; last: answered 500' "
                           "WHERE uuid = $1::uuid", made["uuid"])
    finally:
        await conn.close()
    await page.reload()
    await expect(page.get_by_test_id("disabled-reason")).to_contain_text("answered 500")
    await page.get_by_label("Reset CI hook").click()
    await expect(page.get_by_text("CI hook is enabled again")).to_be_visible()
    status, body = await ui_registry.call("GET", f"repository/alice/app/notification/{made['uuid']}")
    assert body["enabled"] and body["number_of_failures"] == 0

    # Delete.
    await page.get_by_label("Delete CI hook").click()
    await page.get_by_role("button", name="Delete", exact=True).click()
    await expect(page.get_by_text("Deleted notification CI hook")).to_be_visible()
    status, body = await ui_registry.call("GET", "repository/alice/app/notification/")
    assert body["notifications"] == []


async def test_organization_notifications_and_quota_with_a_usage_bar(open_page, ui_registry, receiver):
    url, received = receiver
    # The superuser makes and runs the organisation: other tests' users keep their namespaces as they were.
    status, _ = await ui_registry.call("POST", "organization/", user="admin", json={"name": "quotaorg"})
    assert status == 201
    pusher = await ui_registry.pusher("admin", "quotaorg/app")
    try:
        await push_image(pusher, "quotaorg/app", "v1", layers=2)
    finally:
        await pusher.http.close()
    status, org = await ui_registry.call("GET", "organization/quotaorg", user="admin")
    used = org["quota_report"]["quota_bytes"]
    assert used > 4096

    visit = await open_page("admin")
    page = visit.page
    # The organisations list shows the size and leads to the settings.
    await visit.goto("/organization")
    await expect(page.get_by_role("row", name="quotaorg")).to_contain_text("KiB")
    await page.get_by_label("Settings of quotaorg").click()
    # The organisation page's Settings tab, on General (as in Quay), with Notifications and Quota beside it.
    await expect(page.get_by_role("heading", level=1)).to_contain_text("quotaorg")
    await expect(page.get_by_role("tab", name="Settings", exact=True)).to_have_attribute("aria-selected", "true")
    await expect(page.get_by_role("heading", name="General settings")).to_be_visible()
    await page.get_by_role("tab", name="Notifications").click()

    # Notifications for every repository of the organisation: a Slack hook.
    await page.locator("#create-notification").click()
    await page.get_by_label("Then issue").select_option("slack")
    await page.get_by_label("Slack webhook URL").fill(f"{url}/slack")
    await page.locator("#save-notification").click()
    await page.locator("#close-secret").click()
    await expect(page.get_by_test_id("notifications-table")).to_contain_text("Slack")
    status, body = await ui_registry.call("GET", "organization/quotaorg/notifications", user="admin")
    assert [(n["method"], n["config"]["url"]) for n in body["notifications"]] == [("slack", f"{url}/slack")]
    await audit(page, "organization-notifications")

    # Quota: 1 MiB with a Reject limit at 100 % and a warning at 80 %.
    await page.get_by_role("tab", name="Quota").click()
    await expect(page.get_by_test_id("quota-usage")).to_contain_text("no quota is set")
    visit.problems.allow(400)
    await page.get_by_role("textbox", name="Quota", exact=True).fill("lots")
    await page.locator("#save-quota").click()
    await expect(page.get_by_test_id("quota-error")).to_contain_text("Invalid limit format")
    await page.get_by_role("textbox", name="Quota", exact=True).fill("1 MiB")
    await page.locator("#save-quota").click()
    await expect(page.get_by_test_id("quota-limit")).to_have_text("1.0 MiB")
    for kind, percent in (("Reject", "100"), ("Warning", "80")):
        await page.get_by_role("combobox", name="Action").select_option(kind)
        await page.get_by_label("Threshold (%)").fill(percent)
        await page.locator("#add-quota-limit").click()
        await expect(page.get_by_test_id("quota-limits")).to_contain_text(f"{percent} %")
    # Of the toasts these raised the newest shows, under the masthead, clear of the headings and the tabs.
    toasts = page.get_by_test_id("toasts").get_by_role("listitem")
    await expect(toasts).to_have_count(1)
    await expect(toasts).to_contain_text("Warning limit at 80 % added")
    for height in (768, 900):  # ends at the size the test runs at
        await page.set_viewport_size({"width": 1366, "height": height})
        assert await page.evaluate(COVERED_BY_TOASTS) == []
    status, quotas = await ui_registry.call("GET", "organization/quotaorg/quota", user="admin")
    assert quotas[0]["limit_bytes"] == 1024 ** 2
    assert sorted((limit["type"], limit["limit_percent"]) for limit in quotas[0]["limits"]) == [("Reject", 100), ("Warning", 80)]
    usage = page.get_by_test_id("quota-usage")
    await expect(usage).to_contain_text("of 1.0 MiB")
    value = await usage.get_by_role("progressbar").get_attribute("aria-valuenow")
    assert abs(float(value) - 100 * used / 1024 ** 2) < 1e-6
    await audit(page, "organization-quota")
    # A duplicate limit is refused with Quay's message.
    await page.get_by_role("combobox", name="Action").select_option("Reject")
    await page.get_by_label("Threshold (%)").fill("90")
    await page.locator("#add-quota-limit").click()
    await expect(page.get_by_test_id("quota-error")).to_contain_text("Only one quota limit of type 'Reject' allowed.")
    await page.locator("#remove-quota").click()
    await expect(page.get_by_test_id("quota-usage")).to_contain_text("no quota is set")
    status, quotas = await ui_registry.call("GET", "organization/quotaorg/quota", user="admin")
    assert quotas == []

    # The first settings page's address leads to the same section of the Settings tab.
    await visit.goto("/organization/quotaorg/settings?tab=quota")
    await expect(page).to_have_url(f"{ui_registry.url}/organization/quotaorg?tab=settings&section=quota")
    await expect(page.get_by_role("tab", name="Quota")).to_have_attribute("aria-selected", "true")
    await expect(page.get_by_test_id("quota-usage")).to_contain_text("no quota is set")


async def test_repository_list_shows_exact_sizes(open_page, ui_registry):
    status, body = await ui_registry.call("GET", "browse/repositories", params={"namespace": "alice", "filter": "public-app"})
    [row] = body["repositories"]
    conn = await asyncpg.connect(ui_registry.dsn)
    try:
        exact = await conn.fetchval("SELECT u.size_bytes FROM repository_usage u JOIN repositories r ON r.id = u.repository_id "
                                    "WHERE r.full_name = 'alice/public-app'")
    finally:
        await conn.close()
    assert row["size"] == exact > 0
    visit = await open_page("alice")
    await visit.goto("/repository?namespace=alice")
    await expect(visit.page.get_by_role("row", name="alice/public-app")).to_contain_text("KiB")
