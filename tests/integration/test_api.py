"""/api/v1 behaviour beyond who-may-do-what: sessions with CSRF, bad input that changes nothing,
awkward repository names, bulk robot permissions and default permissions shown by real pushes."""
from __future__ import annotations

from tests.helpers import push_image
from tests.identity_world import PASSWORD


async def _state(conn) -> tuple:
    """Everything bad input must leave alone."""
    return tuple([await conn.fetchval(f"SELECT count(*) FROM {table}") for table in (
        "namespaces", "repositories", "teams", "team_members", "users", "repository_permissions", "default_permissions",
        "audit_logs", "api_tokens")])


async def test_session_cookie_needs_the_csrf_token_for_changes(world):
    import aiohttp

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post(world.api("signin"), json={"username": "alice", "password": "nope"}) as r:
            assert r.status == 401 and (await r.json())["error_message"] == "Invalid username or password"
        async with browser.post(world.api("signin"), json={"username": "alice", "password": PASSWORD}) as r:
            assert r.status == 200
            csrf = (await r.json())["csrf_token"]
            assert "httponly" in r.headers["Set-Cookie"].lower()
        async with browser.get(world.api("user/")) as r:
            assert (await r.json())["username"] == "alice"
        before = await _state(world.conn)
        async with browser.post(world.api("organization/"), json={"name": "viacookie"}) as r:
            assert r.status == 403 and (await r.json())["error_type"] == "csrf_failure"
        assert await _state(world.conn) == before
        async with browser.post(world.api("organization/"), json={"name": "viacookie"}, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 201
        async with browser.post(world.api("signout"), headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
        async with browser.get(world.api("user/")) as r:
            assert r.status == 401
    kinds = [r["kind"] for r in await world.conn.fetch("SELECT kind FROM audit_logs WHERE performer = 'alice' ORDER BY id")]
    assert kinds[-2:] == ["login_success", "org_create"]


async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(world):
    from services.gateway.state import GATEWAY

    await world.reg.runner.app[GATEWAY].audit.flush()  # the world's pushes are logged before counting starts
    headers = world.api_headers("alice")
    cases = [
        ("POST", "organization/", {"name": "Bad Name"}, 400, "invalid name"),
        ("POST", "organization/", {"name": "acme"}, 409, "already taken"),
        ("POST", "organization/", {}, 400, "'name' is required"),
        ("POST", "repository", {"namespace": "acme", "repository": "UPPER"}, 400, "invalid repository name"),
        ("POST", "repository", {"namespace": "acme", "repository": "private"}, 409, "already exists"),
        ("POST", "repository", {"namespace": "acme", "repository": "x", "visibility": "secret"}, 400, "visibility"),
        ("PUT", "organization/acme/team/builders", {"role": "boss"}, 400, "must be one of member, creator, admin"),
        ("PUT", "organization/acme/team/Bad-Team", {"role": "member"}, 400, "invalid team name"),
        ("POST", "organization/acme/team/", {"name": "owners", "role": "admin"}, 409, "already exists"),
        ("PUT", "organization/acme/robots/ci", {}, 409, "already exists"),
        ("PUT", "organization/acme/robots/9bad", {}, 400, "invalid robot name"),
        ("PUT", "repository/acme/private/permissions/user/rita", {"role": "owner"}, 400, "must be one of read, write, admin"),
        ("PUT", "repository/acme/private/permissions/user/nobody", {"role": "read"}, 404, "not found"),
        ("PUT", "repository/acme/private/permissions/user/globex+bot", {"role": "read"}, 404, "not found"),
        ("POST", "organization/acme/prototypes", {"role": "read", "delegate": {"name": "owners", "kind": "robot"}}, 400, "kind"),
        ("PUT", "organization/acme/robots/ci/permissions", {"permissions": {"acme/private": "write", "acme/missing": "read"}}, 400,
         "nothing was changed"),
        ("PUT", "organization/acme", {"tag_expiration_s": 12345}, 400, "TAG_EXPIRATION_OPTIONS"),
        ("DELETE", "organization/acme/team/owners", None, 400, "cannot be deleted"),
    ]
    for method, path, body, status, text in cases:
        before = await _state(world.conn)
        async with world.reg.http.request(method, world.api(path), json=body, headers=headers) as r:
            answer = await r.json()
        assert r.status == status, (path, answer)
        assert text in answer["error_message"], (path, answer)
        assert await _state(world.conn) == before, path
    before = await _state(world.conn)
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        async with world.reg.http.post(world.api("organization/"), data=raw,
                                       headers={**headers, "Content-Type": "application/json"}) as r:
            assert r.status == 400
            assert "JSON" in (await r.json())["error_message"]
    async with world.reg.http.get(world.api("no/such/endpoint"), headers=headers) as r:
        assert r.status == 404 and "discovery" in (await r.json())["error_message"]
    async with world.reg.http.patch(world.api("organization/acme"), headers=headers) as r:
        assert r.status == 405
    assert await _state(world.conn) == before


async def test_repository_names_that_quay_trips_on(world):
    headers = world.api_headers("alice")
    names = ("build", "trigger", "tag", "permissions", "logs", "manifest", "changevisibility")
    for name in names:
        async with world.reg.http.post(world.api("repository"), json={"namespace": "acme", "repository": name},
                                       headers=headers) as r:
            assert r.status == 201, await r.text()
    alice = await world.as_actor("alice", *[f"repository:acme/{name}:pull,push" for name in names])
    for name in names:
        await push_image(alice, f"acme/{name}", "v1")
        async with world.reg.http.get(world.api(f"repository/acme/{name}"), headers=headers) as r:
            view = await r.json()
        assert (view["namespace"], view["name"], list(view["tags"])) == ("acme", name, ["v1"])
        async with world.reg.http.put(world.api(f"repository/acme/{name}/permissions/user/rita"), json={"role": "read"},
                                      headers=headers) as r:
            assert r.status == 200
        async with world.reg.http.get(world.api(f"repository/acme/{name}/logs"), headers=headers) as r:
            assert r.status == 200
    async with world.reg.http.get(world.api("repository?namespace=acme&limit=100"), headers=headers) as r:
        listed = {x["name"] for x in (await r.json())["repositories"]}
    assert set(names) <= listed


async def test_repository_listing_pages(world):
    headers = world.api_headers("root")
    for _ in range(7):
        await world.fresh_repo()
    seen, page = [], None
    while True:
        url = world.api("repository?namespace=acme&limit=3" + (f"&next_page={page}" if page else ""))
        async with world.reg.http.get(url, headers=headers) as r:
            body = await r.json()
        seen += [x["name"] for x in body["repositories"]]
        page = body.get("next_page")
        if not page:
            break
    assert len(seen) == len(set(seen)) == 9 and seen == sorted(seen)


async def test_bulk_robot_permissions_take_effect_in_pushes(world):
    headers = world.api_headers("alice")
    targets = [await world.fresh_repo() for _ in range(3)]
    async with world.reg.http.put(world.api("organization/acme/robots/deployer"), json={"description": "deploys"},
                                  headers=headers) as r:
        assert r.status == 201
        token = (await r.json())["token"]
    assert len(token) == 64
    stored = await world.conn.fetchval("SELECT robot_token_hash FROM users WHERE username = 'acme+deployer'")
    assert token not in stored  # only the hash is kept
    from tests.identity_world import basic

    scopes = [f"repository:{name}:pull,push" for name in targets]

    async def robot_session():
        async with world.reg.http.get(f"{world.url}/v2/auth", params=[("scope", s) for s in scopes],
                                      headers={"Authorization": basic("acme+deployer", token)}) as r:
            body = await r.json()
            assert r.status == 200, body
            return body

    import jwt

    claims = jwt.decode((await robot_session())["token"], options={"verify_signature": False})
    assert [a["actions"] for a in claims["access"]] == [[], [], []]
    async with world.reg.http.put(world.api("organization/acme/robots/deployer/permissions"),
                                  json={"permissions": {targets[0]: "write", targets[1]: "write", targets[2]: "read"}},
                                  headers=headers) as r:
        assert r.status == 200
        assert {p["repository"]["name"]: p["role"] for p in (await r.json())["permissions"]} == {
            targets[0]: "write", targets[1]: "write", targets[2]: "read"}
    import aiohttp

    from tests.identity_world import Authed

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {(await robot_session())['token']}"}) as http:
        robot = Authed(world.url, http)
        for name in targets[:2]:
            await push_image(robot, name, "from-robot")
        async with http.post(robot.v2(f"{targets[2]}/blobs/uploads/")) as r:
            assert r.status == 403  # read only: refused, and it may know the repository exists
    async with world.reg.http.post(world.api("organization/acme/robots/deployer/regenerate"), headers=headers) as r:
        fresh = (await r.json())["token"]
    assert fresh != token
    async with world.reg.http.get(f"{world.url}/v2/auth", params={"scope": scopes[0]},
                                  headers={"Authorization": basic("acme+deployer", token)}) as r:
        assert r.status == 401  # the old token stopped working


async def test_default_permissions_apply_to_repositories_created_by_push(world):
    headers = world.api_headers("alice")
    async with world.reg.http.put(world.api("organization/acme/team/readers"), json={"role": "member"}, headers=headers) as r:
        assert r.status == 201
    async with world.reg.http.put(world.api("organization/acme/team/readers/members/tom"), headers=headers) as r:
        assert r.status == 200
    async with world.reg.http.post(world.api("organization/acme/prototypes"),
                                   json={"role": "read", "delegate": {"name": "readers", "kind": "team"}}, headers=headers) as r:
        assert r.status == 201
    async with world.reg.http.post(world.api("organization/acme/prototypes"),
                                   json={"role": "write", "activating_user": {"name": "alice"},
                                         "delegate": {"name": "rita", "kind": "user"}}, headers=headers) as r:
        assert r.status == 201
    tom = await world.as_actor("tom", "repository:acme/pushed:pull")
    async with tom.http.get(tom.v2("acme/pushed/tags/list")) as r:
        assert r.status == 404
    alice = await world.as_actor("alice", "repository:acme/pushed:pull,push")
    await push_image(alice, "acme/pushed", "v1")
    tom = await world.as_actor("tom", "repository:acme/pushed:pull,push")
    async with tom.http.get(tom.v2("acme/pushed/tags/list")) as r:
        assert (await r.json())["tags"] == ["v1"]
    async with tom.http.post(tom.v2("acme/pushed/blobs/uploads/")) as r:
        assert r.status == 403
    rita = await world.as_actor("rita", "repository:acme/pushed:pull,push")
    await push_image(rita, "acme/pushed", "v2")  # alice's own rule: rita may write what alice creates
    # walt creating (as a creator) does not trigger alice's rule
    await world.conn.execute("INSERT INTO team_members (team_id, user_id) SELECT id, $2 FROM teams WHERE namespace_id = $1 "
                             "AND name = 'readers'", world.ids["acme"], world.ids["walt"])
    await world.conn.execute("UPDATE teams SET role = 'creator' WHERE name = 'readers' AND namespace_id = $1", world.ids["acme"])
    walt = await world.as_actor("walt", "repository:acme/walts:pull,push")
    await push_image(walt, "acme/walts", "v1")
    rita = await world.as_actor("rita", "repository:acme/walts:pull,push")
    async with rita.http.get(rita.v2("acme/walts/tags/list")) as r:
        assert r.status == 404


async def test_a_team_named_twice_for_a_new_robot_is_one_membership(world):
    async with world.reg.http.put(world.api("organization/acme/robots/twice"), json={"teams": ["owners", "owners"]},
                                  headers=world.api_headers("root")) as r:
        assert r.status == 201, await r.text()
        assert (await r.json())["teams"] == [{"name": "owners"}]
    assert await world.conn.fetchval(
        "SELECT count(*) FROM team_members tm JOIN users u ON u.id = tm.user_id WHERE u.username = 'acme+twice'") == 1
