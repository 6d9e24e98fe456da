"""The shell: anonymous browsing of public repositories, branding from config, sign-in (the form,
its error, the session cookie and CSRF token), Appearance remembered, sign-out, and a session that
ends sending the user back to sign-in with a message."""
from __future__ import annotations

import re

from playwright.async_api import expect

from tests.ui.conftest import FOOTER_URL, PASSWORD, SHORT_TITLE, TITLE, audit


async def session_user(visit) -> str | None:
    response = await visit.context.request.get(visit.registry.api("session"))
    return (await response.json())["user"] and (await response.json())["user"]["username"]


async def test_anonymous_browsing_branding_sign_in_appearance_and_sign_out(open_page, ui_registry):
    visit = await open_page(None)
    page = visit.page
    await visit.goto("/")
    await expect(page).to_have_url(re.compile(r"/repository$"))
    await expect(page.get_by_role("link", name="alice/public-app")).to_be_visible()
    await expect(page.get_by_role("link", name="alice/app")).to_have_count(0)
    status, body = await ui_registry.call("GET", "browse/repositories", None)
    names = {f"{r['namespace']}/{r['name']}" for r in body["repositories"]}
    assert "alice/public-app" in names and not names & {"alice/app", "bob/secret"}  # other tests add public ones
    assert all(r["is_public"] for r in body["repositories"])
    # Branding from config.yaml: short title, logo, footer link; the document title.
    await expect(page.get_by_test_id("registry-title")).to_have_text(SHORT_TITLE)
    await expect(page.get_by_role("img", name=TITLE, exact=True)).to_be_visible()
    await expect(page.get_by_test_id("footer").get_by_role("link")).to_have_attribute("href", FOOTER_URL)
    await expect(page).to_have_title(TITLE)
    await audit(page, "repositories-anonymous")

    await page.get_by_role("link", name="Sign in", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/signin"))
    await audit(page, "signin")
    visit.problems.allow(401)  # the wrong password below
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill("not-the-password")
    await page.get_by_role("button", name="Sign in", exact=True).last.click()
    await expect(page.get_by_test_id("signin-error")).to_contain_text("Invalid username or password")
    assert await session_user(visit) is None
    await page.get_by_label("Password").fill(PASSWORD)
    await page.keyboard.press("Enter")  # keyboard submits the form
    await expect(page.get_by_role("link", name="alice/app")).to_be_visible()
    await expect(page.locator("#user-menu")).to_have_text("alice")
    assert await session_user(visit) == "alice"
    cookies = {c["name"]: c for c in await visit.context.cookies()}
    assert cookies["meridian_session"]["httpOnly"] is True

    # Appearance: Dark, remembered across a reload; Device-based follows prefers-color-scheme.
    html = page.locator("html")
    await page.locator("#user-menu").click()
    await page.get_by_role("menuitemradio", name="Dark").click()
    await expect(html).to_have_class(re.compile(r"pf-v6-theme-dark"))
    await page.reload()
    await expect(html).to_have_class(re.compile(r"pf-v6-theme-dark"))
    assert await page.evaluate("localStorage.getItem('meridian.appearance')") == "dark"
    await page.locator("#user-menu").click()
    await page.get_by_role("menuitemradio", name="Device-based").click()
    await expect(html).not_to_have_class(re.compile(r"pf-v6-theme-dark"))  # the context prefers light
    await page.emulate_media(color_scheme="dark")
    await expect(html).to_have_class(re.compile(r"pf-v6-theme-dark"))
    await page.emulate_media(color_scheme="light")
    await page.locator("#user-menu").click()
    await page.get_by_role("menuitemradio", name="Light").click()
    await expect(html).not_to_have_class(re.compile(r"pf-v6-theme-dark"))

    await page.locator("#user-menu").click()
    await page.get_by_role("menuitem", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/signin"))
    assert await session_user(visit) is None


async def test_a_session_that_ends_returns_to_sign_in_with_a_message(open_page, ui_registry):
    import asyncpg

    visit = await open_page("alice")
    page = visit.page
    await visit.goto("/repository")
    await expect(page.get_by_role("link", name="alice/app")).to_be_visible()
    conn = await asyncpg.connect(ui_registry.dsn)
    try:  # the session expires on the server (as when its lifetime runs out)
        await conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE kind = 'session' "
                           "AND user_id = (SELECT id FROM users WHERE username = 'alice')")
    finally:
        await conn.close()
    visit.problems.allow(404)  # alice/app is private: without the session it is not found
    await page.get_by_role("link", name="alice/app").click()
    await expect(page).to_have_url(re.compile(r"/signin\?next=%2Frepository%2Falice%2Fapp"))
    await expect(page.get_by_test_id("session-notice")).to_contain_text("Your session has ended")
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).last.click()
    await expect(page).to_have_url(re.compile(r"/repository/alice/app$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("alice/app")
    assert await session_user(visit) == "alice"


async def test_changes_need_the_csrf_token_of_the_session(open_page, ui_registry):
    visit = await open_page("alice")
    await visit.goto("/repository")
    await expect(visit.page.get_by_role("link", name="alice/app")).to_be_visible()
    visit.problems.allow(403)
    request = visit.context.request
    refused = await request.post(ui_registry.api("repository"), data={"namespace": "alice", "repository": "nocsrf"})
    assert refused.status == 403 and (await refused.json())["error_type"] == "csrf_failure"
    csrf = (await (await request.get(ui_registry.api("session"))).json())["csrf_token"]
    made = await request.post(ui_registry.api("repository"), data={"namespace": "alice", "repository": "withcsrf"},
                              headers={"X-CSRF-Token": csrf})
    assert made.status == 201
    status, _ = await ui_registry.call("GET", "repository/alice/withcsrf")
    assert status == 200
