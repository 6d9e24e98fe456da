"""Usage logs of an organisation, a repository and the signed-in user: the chart of daily counts, the
table paged on the server (older and newer pages of 100), filters by kind, performer and dates, and
Export to a callback URL with the seed's validation and message (the callback really arrives)."""
from __future__ import annotations

import datetime as dt
import re

from aiohttp import web
from playwright.async_api import expect

from shared.embedded import free_port
from tests.helpers import eventually
from tests.ui.conftest import audit


async def test_organization_logs_chart_paging_filters_and_export(open_page, ui_registry):
    status, _ = await ui_registry.call("POST", "organization/", json={"name": "logco"})
    assert status == 201
    # 150 entries over three days, written directly: today 60 pulls, yesterday 50 pushes by alice,
    # the day before 40 pulls by bob (plus today's org_create).
    await ui_registry.sql(
        """
        INSERT INTO audit_logs (kind, namespace_id, namespace, performer, ip, metadata, datetime)
        SELECT k.kind, n.id, 'logco', k.performer, '10.0.0.1', '{"tag": "v1"}', k.at
        FROM namespaces n, (
            SELECT 'pull_repo' AS kind, 'ci' AS performer, now() - make_interval(secs => g) AS at FROM generate_series(1, 60) g
            UNION ALL SELECT 'push_repo', 'alice', date_trunc('day', now()) - interval '12 hours' + make_interval(secs => g)
                      FROM generate_series(1, 50) g
            UNION ALL SELECT 'pull_repo', 'bob', date_trunc('day', now()) - interval '36 hours' + make_interval(secs => g)
                      FROM generate_series(1, 40) g
        ) k WHERE n.name = 'logco'
        """)
    today = dt.datetime.now(dt.UTC).date()
    days = [(today - dt.timedelta(days=n)).isoformat() for n in (0, 1, 2)]
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/organization/logco?tab=logs")
    summary = page.get_by_test_id("logs-summary")
    await expect(summary).to_have_text("151 entries in this period; showing 1–100, newest first.")
    for day, count in zip(days, (61, 50, 40), strict=False):
        await expect(page.get_by_test_id(f"logs-chart-{day}")).to_have_attribute("data-count", str(count))
    rows = page.get_by_test_id("logs-table").locator("tbody tr")
    await expect(rows).to_have_count(100)
    await expect(rows.first).to_contain_text("Create organisation")
    await audit(page, "organization-logs")
    await page.locator("#logs-older").click()
    await expect(page.get_by_test_id("logs-page")).to_have_text("Page 2")
    await expect(rows).to_have_count(51)
    await expect(summary).to_contain_text("showing 101–151")
    await expect(rows.last).to_contain_text("bob")
    await page.locator("#logs-newer").click()
    await expect(rows).to_have_count(100)

    # Filters: a kind, a performer, a date range; each answered by the server.
    await page.get_by_label("Filter by kind").select_option(label="Push")
    await expect(summary).to_contain_text("50 entries")
    await expect(rows).to_have_count(50)
    await expect(rows.filter(has_not_text="Push")).to_have_count(0)
    await page.get_by_label("Filter by kind").select_option(label="All kinds")
    await page.get_by_label("Filter by performer").fill("bob")
    await expect(summary).to_contain_text("40 entries")
    await page.get_by_label("Filter by performer").fill("")
    await page.locator("#logs-from").fill(days[1])
    await page.locator("#logs-to").fill(days[1])
    await expect(summary).to_contain_text("50 entries")
    await page.locator("#logs-from").fill(days[0])
    await page.locator("#logs-to").fill(days[1])
    await expect(page.get_by_test_id("logs-error")).to_contain_text("From is after To")
    await expect(page.locator("#export-logs")).to_be_disabled()
    await page.locator("#logs-from").fill(days[2])
    await page.locator("#logs-to").fill(days[0])

    # Export: the seed's validation, then a callback to a server on this machine.
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await page.locator("#export-logs").click()
        dialog = page.get_by_role("dialog")
        field = dialog.get_by_label(re.compile("Enter an e-mail address or callback URL"))
        await field.fill("ftp://example.com/logs")
        await expect(dialog.get_by_text("Enter an e-mail address or a callback URL starting with http:// or https://")).to_be_visible()
        await expect(dialog.locator("#confirm-export")).to_be_disabled()
        await audit(page, "logs-export-dialog")
        await field.fill(f"http://127.0.0.1:{port}/hook")
        await dialog.locator("#confirm-export").click()
        toast = page.get_by_text(re.compile(r"Logs exported with id [0-9a-f-]{36}"))
        await expect(toast).to_be_visible()
        found = re.search(r"[0-9a-f-]{36}", await toast.inner_text())
        assert found
        export_id = found.group(0)

        async def done():
            status, body = await ui_registry.call("GET", f"exportlogs/{export_id}")
            return status == 200 and body["status"] == "done" and received

        await eventually(done, timeout=30, what="the export to finish and call back")
        assert received[0]["export_id"] == export_id and received[0]["status"] == "done"
    finally:
        await runner.cleanup()
    status, body = await ui_registry.call("GET", "organization/logco/logs", params={"kind": "export_logs"})
    assert [row["metadata"]["export_id"] for row in body["logs"]] == [export_id]


async def test_repository_and_user_logs(open_page, ui_registry):
    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository/alice/app?tab=logs")
    rows = page.get_by_test_id("logs-table").locator("tbody tr")
    await expect(rows.first).to_be_visible()
    await page.get_by_label("Filter by kind").select_option(label="Push")
    await expect(rows.filter(has_not_text="Push")).to_have_count(0)
    await expect(rows.first).to_contain_text("alice/app")
    await audit(page, "repository-logs")
    status, body = await ui_registry.call("GET", "repository/alice/app/aggregatelogs", params={"kind": "push_repo"})
    assert sum(a["count"] for a in body["aggregated"]) == int((await page.get_by_test_id("logs-summary").inner_text()).split()[0])
    # A reader of the repository gets no logs tab (the API refuses them too).
    status, _ = await ui_registry.call("GET", "repository/alice/app/logs", "bob")
    assert status in (403, 404)
    await page.get_by_role("link", name="Usage logs").click()
    await expect(page.get_by_role("heading", name="Your usage logs")).to_be_visible()
    await expect(page.get_by_test_id("logs-table").locator("tbody tr").first).to_be_visible()
    await audit(page, "user-logs")
