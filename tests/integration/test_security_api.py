"""Issue 11, the /api/v1 half: what a caller may not read looks missing in every listing, request bodies
are bounded before they are read, a READ_ONLY repository refuses every API write, a deleted
repository's name is free at once, and bad input gets a Quay-shaped 400, never a 5xx."""
from __future__ import annotations

import asyncio
import base64
import json

import aiohttp

from services.gateway.api.base import READ_ONLY_REPOSITORY_EXEMPT
from services.gateway.api.routes import API_ROUTES
from services.gateway.state import GATEWAY
from tests.helpers import push_image

QUAY_KEYS = {"status", "error_message", "error_type", "detail", "title", "type"}


async def _state(conn) -> tuple:
    """Everything bad input or a refused write must leave alone."""
    return tuple([await conn.fetchval(f"SELECT count(*) FROM {table}") for table in (
        "namespaces", "repositories", "teams", "team_members", "users", "repository_permissions", "default_permissions",
        "api_tokens", "tags", "labels", "notifications", "log_exports")] + [
        await conn.fetchval("SELECT string_agg(name || coalesce(expires_at::text, '') || coalesce(lifetime_end::text, ''), ',' "
                            "ORDER BY id) FROM tags"),
        await conn.fetchval("SELECT string_agg(description || visibility || state, ',' ORDER BY id) FROM repositories"),
        await conn.fetchval("SELECT string_agg(role, ',' ORDER BY id) FROM repository_permissions"),
    ])


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


# 1. Unreadable looks exactly like missing


async def test_team_permissions_show_a_plain_member_only_repositories_he_may_read(world):
    """The finding: a plain member of acme listed the names of acme's private repositories through a
    team's permissions, while the repository itself answered him 404."""
    alice, tom = world.api_headers("alice"), world.api_headers("tom")
    await world.fresh_team("tom")  # tom: a plain member of acme, without any repository role
    holders = await world.fresh_team()
    for repository in ("acme/private", "acme/public"):
        async with world.reg.http.put(world.api(f"repository/{repository}/permissions/team/{holders}"), json={"role": "read"},
                                      headers=alice) as r:
            assert r.status == 200, await r.text()
    async with world.reg.http.get(world.api("repository/acme/private"), headers=tom) as r:
        assert r.status == 404
    async with world.reg.http.get(world.api(f"organization/acme/team/{holders}/permissions"), headers=tom) as r:
        assert r.status == 200
        seen = [p["repository"]["name"] for p in (await r.json())["permissions"]]
    assert seen == ["acme/public"]
    async with world.reg.http.get(world.api(f"organization/acme/team/{holders}/permissions"), headers=alice) as r:
        assert [p["repository"]["name"] for p in (await r.json())["permissions"]] == ["acme/private", "acme/public"]
    # The rule is written once and used by the other listings that name repositories.
    from services.gateway.api import base

    assert callable(base.readable_only)


async def test_listings_never_name_what_the_caller_may_not_read(world):
    """Robots, default permissions, logs and catalog-like listings, as a plain member, a reader, another
    organisation's owner and anonymous: no listing names acme/private or globex/secret to them."""
    alice = world.api_headers("alice")
    await world.fresh_team("tom")
    async with world.reg.http.put(world.api("organization/acme/robots/lister"), json={"repositories": {"acme/private": "read"}},
                                  headers=alice) as r:
        assert r.status == 201, await r.text()
    listings = ["organization/acme/robots?permissions=true", "organization/acme/robots/lister",
                "organization/acme/robots/lister/permissions", "organization/acme/prototypes", "organization/acme/logs",
                "organization/acme/aggregatelogs", "organization/acme/team/owners/permissions", "organization/acme/members",
                "organization/acme", "repository", "repository?namespace=acme", "repository?namespace=globex",
                "browse/repositories", "browse/repositories?namespace=acme", "search?q=secret", "search?q=private",
                "browse/organizations", "browse/organization/acme/teams", "browse/organization/acme/members",
                "browse/organization/acme/robots", "browse/organization/acme/repositories", "user/logs", "entities?prefix=a",
                "organization/globex/team/owners/permissions", "organization/globex"]
    for actor in ("anonymous", "tom", "olga"):
        for path in listings:
            async with world.reg.http.get(world.api(path), headers=world.api_headers(actor)) as r:
                text = await r.text()
            assert r.status < 500, (actor, path, text)
            assert "acme/private" not in text, (actor, path, text)
            if actor != "olga":  # globex is her own organisation
                assert "globex/secret" not in text, (actor, path, text)
            if r.status in (401, 403, 404):
                assert set(json.loads(text)) >= QUAY_KEYS, (actor, path, text)


# 2. Body size and depth limits


async def _post_stream(url: str, size: int, *, chunked: bool) -> tuple[int, dict, int]:
    """POST `size` zero bytes generated on the fly; (status, JSON body, peak RSS growth of this process,
    which runs the registry)."""
    chunk = b"0" * (1 << 20)
    peak = start = _rss_bytes()
    stop = asyncio.Event()

    async def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss_bytes())
            await asyncio.sleep(0.005)

    async def body():
        for _ in range(size // len(chunk)):
            yield chunk

    sampler = asyncio.get_running_loop().create_task(sample())
    headers = {"Content-Type": "application/json"}
    if not chunked:
        headers["Content-Length"] = str(size)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=body(), headers=headers) as r:
                status, answer = r.status, await r.json()
    finally:
        stop.set()
        await sampler
    return status, answer, peak - start


async def test_a_huge_anonymous_body_is_refused_before_it_is_read(world):
    """The finding: an anonymous 256 MiB POST /api/v1/signin took the server from 95 MB to 496 MB."""
    for chunked in (False, True):
        status, answer, growth = await _post_stream(world.api("signin"), 256 << 20, chunked=chunked)
        assert status == 413, answer
        assert set(answer) >= QUAY_KEYS and answer["error_type"] == "request_too_large" and "bytes" in answer["error_message"]
        assert growth < 48 << 20, f"memory grew by {growth >> 20} MiB (chunked={chunked})"


async def test_body_limit_is_configurable_and_applies_to_every_route(make_world):
    world = await make_world(MERIDIAN_API_MAX_BODY_BYTES=4096)
    headers = world.api_headers("alice")
    before = await _state(world.conn)
    big = {"name": "fits", "role": "member", "description": "x" * 5000}
    for method, path in (("POST", "organization/acme/team/"), ("PUT", "organization/acme/team/fits"), ("POST", "organization/"),
                         ("PUT", "repository/acme/private/tag/v2"), ("POST", "no/such/route")):
        async with world.reg.http.request(method, world.api(path), json=big, headers=headers) as r:
            answer = await r.json()
        assert r.status == 413, (path, answer)
        assert "4096" in answer["error_message"]
    assert await _state(world.conn) == before
    async with world.reg.http.post(world.api("organization/acme/team/"), json={**big, "description": "x" * 3000},
                                   headers=headers) as r:
        assert r.status == 201, await r.text()


async def test_deeply_nested_json_is_a_clear_400(world):
    headers = {**world.api_headers("alice"), "Content-Type": "application/json"}
    before = await _state(world.conn)
    for raw in (b"[" * 100_000, b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"role": ' + b'{"a":' * 3000 + b"1" + b"}" * 3001):
        for method, path in (("POST", "signin"), ("PUT", "organization/acme/team/deep"), ("PUT", "organization/acme/replication"),
                             ("POST", "repository/acme/private/notification/")):
            async with world.reg.http.request(method, world.api(path), data=raw, headers=headers) as r:
                answer = await r.json()
            assert r.status == 400, (path, raw[:20], answer)
            assert set(answer) >= QUAY_KEYS and "nested" in answer["error_message"], answer
    assert await _state(world.conn) == before


# 3. READ_ONLY repositories refuse every API write


async def test_a_read_only_repository_refuses_every_api_write(world):
    """The finding: READ_ONLY refused /v2 writes but the API still created, moved and deleted tags,
    restored, expired, labelled and changed the description."""
    alice = world.api_headers("alice")
    async with world.reg.http.post(world.api(f"repository/acme/private/manifest/{world.private_digest}/labels"),
                                   json={"key": "kept", "value": "1"}, headers=alice) as r:
        assert r.status == 201
        label = (await r.json())["id"]
    async with world.reg.http.post(world.api("repository/acme/private/notification/"), headers=alice, json={
            "event": "repo_push", "method": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}}) as r:
        assert r.status == 201, await r.text()
        notification = (await r.json())["uuid"]
    async with world.reg.http.put(world.api("repository/acme/private/changestate"), json={"state": "READ_ONLY"}, headers=alice) as r:
        assert r.status == 200
    await world.reg.runner.app[GATEWAY].audit.flush()
    before = await _state(world.conn)
    samples = {"repository": "acme/private", "tag": "v1", "digest": world.private_digest, "labelid": label,
               "username": "tom", "teamname": "owners", "uuid": notification}
    bodies = {"tag": {"manifest_digest": world.private_digest, "expiration": None},
              "tags_expiration": {"tags": ["v1"], "expiration": None},
              "tag_restore": {"manifest_digest": world.private_digest}, "tag_expire": {},
              "labels": {"key": "new", "value": "x"}, "repository": {"description": "changed"},
              "repository_visibility": {"visibility": "public"}, "repo_user_permission": {"role": "read"},
              "repo_team_permission": {"role": "read"},
              "repository_notifications": {"event": "repo_push", "method": "webhook", "config": {"url": "http://127.0.0.1:9/x"}}}
    refused = set()
    for route in API_ROUTES:
        if "{repository}" not in route.template:
            continue
        for method in sorted(set(route.ops) & {"POST", "PUT", "PATCH", "DELETE"}):
            if (f"api:{route.name}", method) in READ_ONLY_REPOSITORY_EXEMPT:
                continue
            path = route.template.format(**samples)
            async with world.reg.http.request(method, world.api(path), json=bodies.get(route.name, {}), headers=alice) as r:
                answer = await r.json()
            assert r.status == 405, (method, path, answer)
            assert answer["error_type"] == "repository_read_only" and "read-only" in answer["error_message"], answer
            refused.add((method, route.name))
    assert {("PUT", "tag"), ("DELETE", "tag"), ("POST", "tag_restore"), ("POST", "tag_expire"), ("PUT", "tags_expiration"),
            ("POST", "labels"), ("DELETE", "label"), ("PUT", "repository"), ("POST", "repository_visibility"),
            ("PUT", "repo_user_permission"), ("DELETE", "repo_team_permission")} <= refused
    # Permissions given from the robot's side name the repository in the body.
    async with world.reg.http.put(world.api("organization/acme/robots/ci/permissions"),
                                  json={"permissions": {"acme/private": "read"}}, headers=alice) as r:
        assert r.status == 405 and (await r.json())["error_type"] == "repository_read_only"
    async with world.reg.http.put(world.api("organization/acme/robots/newbot"), json={"repositories": {"acme/private": "read"}},
                                  headers=alice) as r:
        assert r.status == 405
    await world.reg.runner.app[GATEWAY].audit.flush()
    assert await _state(world.conn) == before
    # Reads still work, and an administrator can end the state.
    async with world.reg.http.get(world.api("repository/acme/private/tag/v1"), headers=alice) as r:
        assert r.status == 200
    async with world.reg.http.put(world.api("repository/acme/private/changestate"), json={"state": "NORMAL"}, headers=alice) as r:
        assert r.status == 200
    async with world.reg.http.put(world.api("repository/acme/private"), json={"description": "writable again"}, headers=alice) as r:
        assert r.status == 200
    # Exactly these stay allowed: ending the state, exporting the logs, deleting the repository whole.
    exempt = set(READ_ONLY_REPOSITORY_EXEMPT)
    assert exempt == {("api:repository_state", "PUT"), ("api:repository_exportlogs", "POST"), ("api:repository", "DELETE")}
    read_only = await world.fresh_repo()
    async with world.reg.http.put(world.api(f"repository/{read_only}/changestate"), json={"state": "READ_ONLY"}, headers=alice) as r:
        assert r.status == 200
    async with world.reg.http.delete(world.api(f"repository/{read_only}"), headers=alice) as r:
        assert r.status == 204


# 4. A deleted repository's name is free at once


async def test_a_deleted_repository_name_is_free_at_once(world):
    alice_api = world.api_headers("alice")
    for attempt in range(3):
        async with world.reg.http.post(world.api("repository"), json={"namespace": "acme", "repository": "again"},
                                       headers=alice_api) as r:
            assert r.status == 201, (attempt, await r.text())
        alice = await world.as_actor("alice", "repository:acme/again:pull,push")
        await push_image(alice, "acme/again", f"v{attempt}")
        async with world.reg.http.delete(world.api("repository/acme/again"), headers=alice_api) as r:
            assert r.status == 204
        # and by push, before gc ran
        pushed = await world.as_actor("alice", "repository:acme/again:pull,push")
        await push_image(pushed, "acme/again", "pushed")
        async with world.reg.http.get(world.api("repository/acme/again"), headers=alice_api) as r:
            assert list((await r.json())["tags"]) == ["pushed"]
        async with world.reg.http.delete(world.api("repository/acme/again"), headers=alice_api) as r:
            assert r.status == 204
    live = await world.conn.fetchval("SELECT count(*) FROM repositories WHERE namespace_id = $1 AND name = 'again' "
                                     "AND state <> 'deleted'", world.ids["acme"])
    assert live == 0
    # The domain's own delete of the account layer frees the short name as well as the full name.
    from shared.model import accounts

    repo_id = await world.conn.fetchval("SELECT id FROM repositories WHERE full_name = 'acme/public'")
    await accounts.mark_repository_deleted(world.conn, repo_id)
    async with world.reg.http.post(world.api("repository"), json={"namespace": "acme", "repository": "public"},
                                   headers=alice_api) as r:
        assert r.status == 201, await r.text()


# 5. Bad input: a Quay-shaped 400, never a 5xx, nothing changed


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


RAW = object()  # marks a raw body in the cases below


def _bad_input_cases(digest: str) -> list[tuple]:
    tag = "repository/acme/private/tag/v1"
    huge = 2 ** 63
    return [
        # NUL and lone surrogates in the path, the query and JSON
        ("GET", "organization/acme/team/a%00b/permissions", None),
        ("PUT", "organization/acme/team/a%00b", {"role": "member"}),
        ("GET", "organization/acme/robots/a%00b", None),
        ("GET", "repository?namespace=%00", None),
        ("GET", "repository/acme/private/tag/?specificTag=%00", None),
        ("GET", "repository/acme/private/tag/?filter_tag_name=like:%00", None),
        ("GET", "organization/acme/logs?performer=%00", None),
        # Percent-encoded surrogates are invalid UTF-8: they arrive as U+FFFD, so only "no 5xx" is asked (0).
        ("GET", "organization/acme/logs?kind=%ED%A0%80", None, 0),
        ("GET", "search?q=%ED%A0%80", None, 0),
        ("GET", "organization/a%ED%A0%80b", None, 0),
        ("PUT", "organization/acme/team/nul", {"role": "member", "description": "a\x00b"}),
        ("PUT", "organization/acme/team/nul", (RAW, b'{"role": "member", "description": "\\ud800"}')),
        ("POST", "signin", (RAW, b'{"username": "\\udfff", "password": "x"}')),
        ("POST", "signin", {"username": "al\x00ice", "password": "x"}),
        ("PUT", "organization/acme", {"email": "x\x00@example.com"}),
        ("POST", f"repository/acme/private/manifest/{digest}/labels", {"key": "k", "value": "\x00"}),
        ("PUT", "repository/acme/private", (RAW, b'{"description": "\\ud83d"}')),
        ("PUT", "organization/acme/robots/ci/permissions", {"permissions": {"acme/pri\x00vate": "read"}}),
        ("POST", "organization/acme/prototypes", {"role": "read", "delegate": {"name": "own\x00ers", "kind": "team"}}),
        ("PUT", "organization/acme/team/x", (RAW, b'{"\\u0000": 1, "role": "member"}')),
        # lengths
        ("PUT", "organization/acme/team/" + "t" * 3000, {"role": "member"}),
        ("GET", "organization/acme/team/" + "t" * 3000 + "/permissions", None),
        # numbers
        ("PUT", tag, {"expiration": 1e20}),
        ("PUT", tag, (RAW, b'{"expiration": NaN}')),
        ("PUT", tag, (RAW, b'{"expiration": Infinity}')),
        ("PUT", tag, (RAW, b'{"expiration": -Infinity}')),
        ("PUT", tag, {"expiration": huge}),
        ("PUT", tag, {"expiration": -huge}),
        ("PUT", tag, (RAW, b'{"expiration": 1' + b"0" * 400 + b"}")),
        ("PUT", "repository/acme/private/tags/expiration", {"tags": ["v1"], "expiration": huge}),
        ("PUT", "repository/acme/private/tags/expiration", {"tags": ["v1"], "expiration": 1e300}),
        ("POST", "user/tokens", {"expiration_days": huge}),
        ("PUT", "organization/acme", {"tag_expiration_s": huge}),
        ("GET", f"repository/acme/private/tag/?page={huge}", None),
        ("GET", "repository/acme/private/tag/?page=99999999999999999", None),
        ("GET", f"repository/acme/private/tag/?limit={huge}", None),
        ("GET", f"browse/repositories?page={huge * 10}", None),
        ("GET", f"search?q=a&page={huge}", None),
        ("GET", f"organization/acme/logs?next_page={_cursor(f'2026-01-01T00:00:00+00:00|{huge}')}", None),
        ("GET", f"organization/acme/logs?next_page={_cursor('2026-01-01T00:00:00+00:00|' + '9' * 40)}", None),
        ("GET", f"superuser/logs?next_page={_cursor(f'2026-01-01T00:00:00+00:00|{huge}')}", None),
        ("GET", f"repository?next_page={_cursor(chr(0))}", None),
        ("DELETE", f"user/tokens/{huge}", None, 404),  # an id no token can have: not found, as "abc"
        ("DELETE", f"user/tokens/{'9' * 30}", None, 404),
        # dates
        ("GET", "organization/acme/logs?endtime=12/31/9999", None),
        ("GET", "organization/acme/aggregatelogs?endtime=12/31/9999", None),
        ("GET", "organization/acme/logs?endtime=0001-01-01T00:00:00", None),
        ("GET", "organization/acme/logs?starttime=01/01/0001&endtime=01/01/0001", None),
        ("GET", "organization/acme/logs?starttime=01/02/0001&endtime=01/02/0001", None, 200),
        ("GET", "repository/acme/private/tag/?endtime=12/31/9999", None),
        ("GET", "repository/acme/private/tag/?starttime=9999-12-31T23:59:59.999999-23:59", None),
        ("GET", "superuser/logs?endtime=12/31/9999", None),
        # URLs
        ("POST", "organization/acme/exportlogs", {"callback_url": "http://127.0.0.1:99999/"}),
        ("POST", "organization/acme/exportlogs", {"callback_url": "http://[::1/"}),
        ("POST", "organization/acme/exportlogs", {"callback_url": "http://127.0.0.1:-1/"}),
        ("POST", "organization/acme/exportlogs", {"callback_url": "http://127.0.0.1:abc/"}),
        ("POST", "repository/acme/private/notification/", {"event": "repo_push", "method": "webhook",
                                                           "config": {"url": "http://[::1/"}}),
        ("POST", "repository/acme/private/notification/", {"event": "repo_push", "method": "webhook",
                                                           "config": {"url": "http://127.0.0.1:99999/"}}),
        # labels
        ("POST", f"repository/acme/private/manifest/{digest}/labels", {"key": "quay.expires-after", "value": "99999999999w"}),
        ("POST", f"repository/acme/private/manifest/{digest}/labels", {"label": "quay.expires-after=99999999999999999999999s"}),
    ]


async def test_bad_input_is_a_quay_shaped_400_and_never_a_5xx(world):
    await world.reg.runner.app[GATEWAY].audit.flush()
    before = await _state(world.conn)
    failures = []
    for actor in ("alice", "root"):
        headers = world.api_headers(actor)
        for method, path, body, *expected in _bad_input_cases(world.private_digest):
            if path.startswith("superuser/") and actor != "root":
                continue
            kwargs: dict = {"json": body} if not isinstance(body, tuple) else {
                "data": body[1], "headers": {**headers, "Content-Type": "application/json"}}
            kwargs.setdefault("headers", headers)
            url = world.api("") + path  # already percent-encoded
            async with world.reg.http.request(method, aiohttp.client.URL(url, encoded=True), **kwargs) as r:
                text = await r.text()
            try:
                answer = json.loads(text)
            except ValueError:
                answer = {}
            want = (expected or [400])[0]
            if (r.status != want if want else r.status >= 500) or not (set(answer) >= QUAY_KEYS or r.status == 200):
                failures.append((actor, method, path[:80], r.status, text[:200]))
    assert not failures, "\n".join(map(str, failures))
    await world.reg.runner.app[GATEWAY].audit.flush()
    assert await _state(world.conn) == before


async def _raw_get(url: str, path: str, header: bytes) -> tuple[int, dict]:
    """A GET with a header no HTTP client library would send (invalid UTF-8)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n")
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_credentials_in_invalid_utf8_are_a_400(world):
    """A Bearer token or session cookie that is not UTF-8 reached the credential lookup and became a 500."""
    for header in (b"Authorization: Bearer \xff\xfe", b"Cookie: meridian_session=\xff\xfe", b"X-CSRF-Token: \xed\xa0\x80"):
        for path in ("/api/v1/user/", "/api/v1/repository/acme/public", "/api/v1/nothing/here"):
            status, answer = await _raw_get(world.url, path, header)
            assert status == 400 and set(answer) >= QUAY_KEYS, (header, path, answer)


async def test_another_organisations_robots_cannot_be_probed_through_grants(world):
    """The finding: olga (admin of globex only) learnt which robots acme has: naming an existing acme
    robot in her team, repository permission or default permission answered 400 "belongs to another
    namespace", a missing one 404 "not found". Both now get the same 404, and nothing changes."""
    olga = world.api_headers("olga")
    before = await _state(world.conn)
    attempts = [
        ("PUT", "organization/globex/team/owners/members/{robot}", None),
        ("PUT", "repository/globex/secret/permissions/user/{robot}", {"role": "read"}),
        ("DELETE", "repository/globex/secret/permissions/user/{robot}", None),
        ("POST", "organization/globex/prototypes", {"role": "read", "delegate": {"name": "{robot}", "kind": "user"}}),
    ]
    for method, path, body in attempts:
        answers = []
        for robot in ("acme+ci", "acme+nosuchrobot"):
            payload = json.loads(json.dumps(body).replace("{robot}", robot)) if body else None
            async with world.reg.http.request(method, world.api(path.format(robot=robot)), json=payload, headers=olga) as r:
                answer = await r.json()
                answers.append((r.status, answer["error_message"].replace(robot, "<robot>")))
        assert answers[0] == answers[1], (method, path, answers)
        assert answers[0][0] == 404, (method, path, answers)
    assert await _state(world.conn) == before


async def test_a_plain_member_is_not_told_the_usage_of_repositories_he_cannot_read(make_world):
    """The organisation's quota_report counts every repository: its administrators see it, a plain
    member (who may read none of acme's private repositories) does not."""
    from tests.integration.test_permission_matrix import add_team_principals

    world = await make_world(FEATURE_QUOTA_MANAGEMENT=True)
    await add_team_principals(world)
    async with world.reg.http.get(world.api("organization/acme"), headers=world.api_headers("alice")) as r:
        assert r.status == 200
        assert (await r.json())["quota_report"]["quota_bytes"] > 0
    async with world.reg.http.get(world.api("organization/acme"), headers=world.api_headers("mia")) as r:
        assert r.status == 200
        view = await r.json()
    assert view["is_member"] and not view["is_admin"] and "quota_report" not in view
