"""A repository with 100,000 tags opens its Tags tab in the real browser in under a second, unfiltered,
filtered by substring and by regex, and sorted by last modified: the server filters, sorts and pages,
so the browser gets one page."""
from __future__ import annotations

import os

import asyncpg
from playwright.async_api import expect

from tests.helpers import push_image

TAGS = 100_000
BAR_SECONDS = 1.0


async def seed_many_tags(ui_registry) -> None:
    status, _ = await ui_registry.call("POST", "repository", json={"namespace": "alice", "repository": "big"})
    assert status == 201
    pusher = await ui_registry.pusher("alice", "alice/big")
    try:
        digest, _ = await push_image(pusher, "alice/big", "seed")
    finally:
        await pusher.http.close()
    conn = await asyncpg.connect(ui_registry.dsn)
    try:  # rows as pushes would leave them, written in one statement to keep the test short
        await conn.execute(
            """
            INSERT INTO tags (repository_id, name, manifest_id, lifetime_start)
            SELECT m.repository_id, 't' || lpad(n::text, 6, '0'), m.id, now() - make_interval(secs => n)
            FROM manifests m, generate_series(1, $2) AS n WHERE m.digest = $1
              AND m.repository_id = (SELECT id FROM repositories WHERE full_name = 'alice/big')
            """, digest, TAGS - 1)
        await conn.execute("ANALYZE tags")
    finally:
        await conn.close()


async def timed_open(page, url: str, first_row: str, rows: int) -> float:
    """Seconds from the start of the navigation (the browser's own clock) until the expected first
    row is in the page; then the page must hold exactly `rows` rows."""
    await page.goto(url, wait_until="commit")
    await page.get_by_test_id(f"tag-row-{first_row}").wait_for()  # polled in the page, not at intervals
    elapsed = await page.evaluate("performance.now()") / 1000
    if os.environ.get("MERIDIAN_UI_TIMELINE"):
        print(url, round(elapsed, 3), await page.evaluate(
            "performance.getEntriesByType('resource').map(e => [e.name.split('/').slice(-2).join('/').slice(0, 60), "
            "Math.round(e.startTime), Math.round(e.responseEnd)])"))
    table = page.get_by_test_id("tags-table")
    await expect(table.locator("tbody > tr:first-child").first).to_contain_text(first_row)
    await expect(table.locator("tbody > tr:first-child")).to_have_count(rows)
    return elapsed


async def test_a_hundred_thousand_tags_open_in_under_a_second(open_page, ui_registry):
    await seed_many_tags(ui_registry)
    status, body = await ui_registry.call("GET", "browse/repository/alice/big/tags", params={"limit": 1})
    assert body["total"] == TAGS
    visit = await open_page("alice")
    page = visit.page
    base = f"{ui_registry.url}/repository/alice/big?tab=tags"
    await timed_open(page, base, "seed", 25)  # warm-up: the browser caches the immutable bundle
    cases = {
        "unfiltered": (base, "seed", 25),
        "substring": (f"{base}&filter=t09999", "t099990", 10),
        "regex": (f"{base}&filter=%5Et09999%5B0-4%5D%24&regex=true", "t099990", 5),
        "newest first": (f"{base}&sort=last_modified&order=desc", "seed", 25),
        "last page": (f"{base}&page=4000", "t099975", 25),
    }
    timings = {}
    for name, (url, first, rows) in cases.items():
        timings[name] = min([await timed_open(page, url, first, rows) for _ in range(3)])
    print("Tags tab with 100,000 tags, best of 3 (s):", {k: round(v, 3) for k, v in timings.items()})
    slow = {k: v for k, v in timings.items() if v >= BAR_SECONDS}
    assert not slow, f"over {BAR_SECONDS}s: {slow}"
    # The page made one tags call, not one per hundred tags.
    calls = []

    def record(request) -> None:
        if "/api/v1/" in request.url:
            calls.append(request.url)

    page.on("request", record)
    await timed_open(page, base, "seed", 25)
    assert len([c for c in calls if "/tags" in c]) == 1 and len(calls) <= 4, calls
