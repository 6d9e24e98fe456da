"""An organisation with 1,000 repositories and 500 robot accounts: its repository list, its robot list
(by name, and by how many repositories each holds), the organisations list sorted by size, the team
of 500 members and one robot's permissions over all 1,000 repositories each show in the real browser
in under a second, measured by the browser's clock: the server filters, sorts and pages."""
from __future__ import annotations

from playwright.async_api import expect

REPOSITORIES, ROBOTS = 1000, 500
BAR_SECONDS = 1.0


async def seed(ui_registry) -> None:
    status, _ = await ui_registry.call("POST", "organization/", json={"name": "scaleco"})
    assert status == 201
    status, _ = await ui_registry.call("PUT", "organization/scaleco/team/bots", json={"role": "member"})
    assert status == 201
    # Rows as the API would leave them, written in a few statements to keep the test short.
    await ui_registry.sql(
        "INSERT INTO repositories (namespace_id, name, full_name) SELECT n.id, 'repo' || lpad(g::text, 4, '0'), "
        "'scaleco/repo' || lpad(g::text, 4, '0') FROM namespaces n, generate_series(1, $1) g WHERE n.name = 'scaleco'", REPOSITORIES)
    await ui_registry.sql(
        "INSERT INTO users (username, robot_namespace_id, robot_token_hash, description) SELECT 'scaleco+bot' || lpad(g::text, 3, '0'), "
        "n.id, md5(g::text), 'robot ' || g FROM namespaces n, generate_series(1, $1) g WHERE n.name = 'scaleco'", ROBOTS)
    await ui_registry.sql(  # robot k holds read on k mod 7 + 1 repositories; all sit in team bots
        "INSERT INTO repository_permissions (repository_id, user_id, role) SELECT r.id, u.id, 'read' FROM users u "
        "CROSS JOIN generate_series(0, 6) k "
        "JOIN repositories r ON r.full_name = 'scaleco/repo' || lpad((((substr(u.username, 12))::int * 13 + k) % $1 + 1)::text, 4, '0') "
        "WHERE u.username LIKE 'scaleco+bot%' AND k <= (substr(u.username, 12))::int % 7", REPOSITORIES)
    await ui_registry.sql(
        "INSERT INTO team_members (team_id, user_id) SELECT t.id, u.id FROM teams t JOIN namespaces n ON n.id = t.namespace_id, users u "
        "WHERE n.name = 'scaleco' AND t.name = 'bots' AND u.username LIKE 'scaleco+bot%'")
    await ui_registry.sql("ANALYZE")


async def timed(page, url: str, first) -> float:
    """Seconds from the start of the navigation (the browser's own clock) until `first` shows."""
    await page.goto(url, wait_until="commit")
    await first.wait_for()
    return await page.evaluate("performance.now()") / 1000


async def test_a_thousand_repositories_and_five_hundred_robots_under_a_second(open_page, ui_registry):
    await seed(ui_registry)
    status, body = await ui_registry.call("GET", "browse/organization/scaleco/robots",
                                          params={"sort": "repositories", "order": "desc", "limit": 1})
    assert body["total"] == ROBOTS and body["robots"][0]["repositories"] == 7
    status, body = await ui_registry.call("GET", "browse/repositories", params={"namespace": "scaleco", "limit": 1})
    assert body["total"] == REPOSITORIES
    visit = await open_page("alice")
    page = visit.page
    base = f"{ui_registry.url}/organization/scaleco"
    top_robot = (await ui_registry.call("GET", "browse/organization/scaleco/robots",
                                                     params={"sort": "repositories", "order": "desc", "limit": 1}))[1]["robots"][0]["name"]
    cases = {
        "repositories": (base, page.get_by_role("link", name="scaleco/repo0001")),
        "repositories, last page": (f"{base}?page=40", page.get_by_role("link", name="scaleco/repo1000")),
        "robots": (f"{base}?tab=robots", page.get_by_test_id("robots-table-row-scaleco+bot001")),
        "robots by repositories": (f"{base}?tab=robots&sort=repositories&order=desc", page.get_by_test_id(f"robots-table-row-{top_robot}")),
        "robots filtered": (f"{base}?tab=robots&filter=bot49", page.get_by_test_id("robots-table-row-scaleco+bot499")),
        "members": (f"{base}?tab=teams&view=members&kind=robot&page=20", page.get_by_test_id("members-table-row-scaleco+bot500")),
        "team of 500": (f"{base}/teams/bots?page=20", page.get_by_test_id("team-members-row-scaleco+bot500")),
        "organisations by size": (f"{ui_registry.url}/organization?filter=scaleco&sort=size&order=desc",
                                  page.get_by_test_id("organizations-table-row-scaleco")),
    }
    await timed(page, *cases["repositories"])  # warm-up: the browser caches the immutable bundle
    timings = {}
    for name, (url, first) in cases.items():
        timings[name] = min([await timed(page, url, first) for _ in range(3)])
    # A robot's permissions over all 1,000 repositories, from the click to the first row.
    await page.goto(f"{base}?tab=robots&sort=repositories&order=desc")
    link = page.get_by_test_id(f"robot-repositories-{top_robot}")
    await link.wait_for()
    start = await page.evaluate("performance.now()")
    await link.click()
    await page.get_by_test_id("role-table-row-scaleco/repo0001").wait_for()
    timings["a robot's permissions on 1,000 repositories"] = (await page.evaluate("performance.now()") - start) / 1000
    await expect(page.get_by_role("dialog").get_by_role("button", name=f"1 - 10 of {REPOSITORIES}").first).to_be_visible()
    print("organisation with 1,000 repositories and 500 robots, best of 3 (s):", {k: round(v, 3) for k, v in timings.items()})
    slow = {k: v for k, v in timings.items() if v >= BAR_SECONDS}
    assert not slow, f"over {BAR_SECONDS}s: {slow}"
