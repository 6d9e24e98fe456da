"""The API behind the web UI's organisation, search and superuser pages: lists filtered, sorted and
paged on the server (dates sorted as dates, sizes as numbers, team members past any page size), who
may list what, search that finds only what the caller may read, superuser user management, the
registry's read-only status and registry-wide usage logs."""
from __future__ import annotations

import datetime as dt
import hashlib

from shared.model import access, accounts
from shared.registry import quota
from shared.servicekeys import SigningKey, register
from tests.identity_world import PASSWORD, unique


async def call(world, method: str, path: str, actor: str = "alice", **kwargs):
    async with world.reg.http.request(method, world.api(path), headers=world.api_headers(actor), **kwargs) as r:
        return r.status, (await r.json() if r.status != 204 else None)


async def names(world, path: str, actor: str = "alice", key: str | None = None, **params) -> list[str]:
    status, body = await call(world, "GET", path, actor, params=params)
    assert status == 200, body
    key = key or next(k for k, v in body.items() if isinstance(v, list))
    return [row.get("name") or row.get("username") for row in body[key]]


async def recount(conn, namespace_id: int) -> None:
    """The namespace's exact usage from its rows, as the domain's changes keep it (docs/quotas.md): a
    tagged manifest is counted, its blobs counted once per namespace and per repository."""
    repos = "SELECT id FROM repositories WHERE namespace_id = $1"
    await conn.execute(f"UPDATE manifests m SET quota_counted = true, quota_refs = (SELECT count(*) FROM tags t "
                       f"WHERE t.manifest_id = m.id AND t.lifetime_end IS NULL) WHERE m.repository_id IN ({repos})", namespace_id)
    await conn.execute("DELETE FROM quota_namespace_blobs WHERE namespace_id = $1", namespace_id)
    await conn.execute(f"DELETE FROM quota_repository_blobs WHERE repository_id IN ({repos})", namespace_id)
    await conn.execute("INSERT INTO quota_namespace_blobs (namespace_id, blob_id, refs) SELECT $1, mb.blob_id, count(*) "
                       f"FROM manifests m JOIN manifest_blobs mb ON mb.manifest_id = m.id WHERE m.repository_id IN ({repos}) "
                       "GROUP BY mb.blob_id", namespace_id)
    await conn.execute("INSERT INTO quota_repository_blobs (repository_id, blob_id, refs) SELECT m.repository_id, mb.blob_id, "
                       f"count(*) FROM manifests m JOIN manifest_blobs mb ON mb.manifest_id = m.id WHERE m.repository_id IN ({repos}) "
                       "GROUP BY 1, 2", namespace_id)
    await conn.execute("INSERT INTO namespace_usage (namespace_id, size_bytes) SELECT $1, coalesce(sum(b.size), 0) "
                       "FROM quota_namespace_blobs q JOIN blobs b ON b.id = q.blob_id WHERE q.namespace_id = $1 "
                       "ON CONFLICT (namespace_id) DO UPDATE SET size_bytes = EXCLUDED.size_bytes", namespace_id)
    await conn.execute(f"INSERT INTO repository_usage (repository_id, size_bytes) SELECT r.id, coalesce((SELECT sum(b.size) "
                       f"FROM quota_repository_blobs q JOIN blobs b ON b.id = q.blob_id WHERE q.repository_id = r.id), 0) "
                       f"FROM repositories r WHERE r.id IN ({repos}) "
                       "ON CONFLICT (repository_id) DO UPDATE SET size_bytes = EXCLUDED.size_bytes", namespace_id)


async def blob(conn, seed: str, size: int) -> int:
    digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    return await conn.fetchval("INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT (digest) DO UPDATE "
                               "SET size = blobs.size RETURNING id", digest, size)


async def tagged(conn, repo_id: int, seed: str, blob_ids: list[int], modified: dt.datetime | None = None) -> None:
    """A manifest tagged v1 in the repository that lists `blob_ids` (each also linked to the repository)."""
    digest = "sha256:" + hashlib.sha256(f"manifest {seed}".encode()).hexdigest()
    manifest_id = await conn.fetchval(
        "INSERT INTO manifests (repository_id, digest, media_type, size, body) "
        "VALUES ($1, $2, 'application/vnd.oci.image.manifest.v1+json', 2, '{}') RETURNING id", repo_id, digest)
    for blob_id in blob_ids:
        await conn.execute("INSERT INTO repository_blobs (repository_id, blob_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                           repo_id, blob_id)
        await conn.execute("INSERT INTO manifest_blobs (manifest_id, blob_id) VALUES ($1, $2)", manifest_id, blob_id)
    await conn.execute("INSERT INTO tags (repository_id, name, manifest_id, lifetime_start) VALUES ($1, 'v1', $2, $3)",
                       repo_id, manifest_id, modified or dt.datetime.now(dt.UTC))


async def org_with(world, name: str, *, size: int, modified: dt.datetime) -> None:
    """An organisation owned by alice with one repository holding one blob of `size` bytes and one
    tag last changed at `modified`."""
    conn = world.conn
    async with conn.transaction():
        org_id = await accounts.create_organization(conn, name, f"{name}@example.com", world.ids["alice"], None)
        repo_id, _ = await access.create_repository(conn, org_id, name, "app", creator=None)
        await tagged(conn, repo_id, name, [await blob(conn, name, size)], modified)
        await recount(conn, org_id)


async def test_organizations_with_counts_sorted_as_dates_and_numbers(world):
    # Formatted as text, these dates and sizes sort in another order than in time and in bytes.
    await org_with(world, "zeta", size=9, modified=dt.datetime(2026, 2, 2, tzinfo=dt.UTC))
    await org_with(world, "yotta", size=100, modified=dt.datetime(2025, 12, 25, tzinfo=dt.UTC))
    await org_with(world, "xeno", size=10, modified=dt.datetime(2026, 1, 10, tzinfo=dt.UTC))
    status, body = await call(world, "GET", "browse/organizations", params={"filter": "acme"})
    assert status == 200 and body["total"] == 1
    acme = body["organizations"][0]
    assert (acme["name"], acme["repositories"], acme["teams"], acme["members"], acme["robots"], acme["is_admin"]) == \
        ("acme", 2, 1, 1, 2, True)
    assert acme["size"] > 2048 and acme["last_modified"]
    ours = {"filter": "^(xeno|yotta|zeta)$", "regex": "true"}
    assert await names(world, "browse/organizations", sort="last_modified", **ours) == ["yotta", "xeno", "zeta"]
    assert await names(world, "browse/organizations", sort="last_modified", order="desc", **ours) == ["zeta", "xeno", "yotta"]
    assert await names(world, "browse/organizations", sort="size", **ours) == ["zeta", "xeno", "yotta"]
    assert await names(world, "browse/organizations", sort="size", order="desc", limit=1, page=2, **ours) == ["xeno"]
    # Who sees which: members their organisations, superusers all, others none.
    assert "globex" not in await names(world, "browse/organizations")
    assert {"acme", "globex", "zeta"} <= set(await names(world, "browse/organizations", "root", limit=100))
    status, body = await call(world, "GET", "browse/organizations", "rita")
    assert status == 200 and body["total"] == 0
    for params in ({"sort": "colour"}, {"filter": "(", "regex": "true"}, {"limit": "0"}):
        status, body = await call(world, "GET", "browse/organizations", params=params)
        assert status == 400 and body["error_message"], params
    status, _ = await call(world, "GET", "browse/organizations", "anonymous")
    assert status == 401


async def test_a_plain_member_is_not_shown_the_robot_count(world):
    """Robots are for an organisation's administrators (as in Quay): the listing gives a plain member no
    robot count, and sorting by it tells them nothing either (their organisations sort as if unknown)."""
    team = await world.fresh_team("tom")  # tom: a plain member of acme (2 robots) and of globex (none)
    team_id = await world.conn.fetchval("INSERT INTO teams (namespace_id, name, role) VALUES ($1, $2, 'member') RETURNING id",
                                        world.ids["globex"], team)
    await world.conn.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)", team_id, world.ids["tom"])
    ours = {"filter": "^(acme|globex)$", "regex": "true"}
    status, body = await call(world, "GET", "browse/organizations", "tom", params=ours)
    assert status == 200 and [o["name"] for o in body["organizations"]] == ["acme", "globex"]
    for org in body["organizations"]:
        assert org["robots"] is None and org["is_admin"] is False, org
        assert org["teams"] >= 1 and org["members"] >= 1  # members see teams and members
    for order in ("asc", "desc"):  # by name either way (by robot count, 0 against 2, each order would flip)
        status, body = await call(world, "GET", "browse/organizations", "tom", params={"sort": "robots", "order": order, **ours})
        assert status == 200 and [o["name"] for o in body["organizations"]] == (["acme", "globex"] if order == "asc"
                                                                              else ["globex", "acme"]), order
    # Administrators and superusers still see it.
    status, body = await call(world, "GET", "browse/organizations", "alice", params={"filter": "acme"})
    assert [(o["name"], o["robots"]) for o in body["organizations"]] == [("acme", 2)]
    status, body = await call(world, "GET", "browse/organizations", "root", params=ours)
    assert [(o["name"], o["robots"]) for o in body["organizations"]] == [("acme", 2), ("globex", 0)]


async def test_organization_sizes_are_exact_and_cover_only_what_the_caller_reads(world):
    """An organisation's size is its exact usage (docs/quotas.md): a layer shared by two repositories
    counts once, and a blob linked to a repository that no manifest lists (an upload left behind)
    not at all. A member who reads one repository sees that repository's blobs only."""
    conn = world.conn
    name = unique("sizes")
    async with conn.transaction():
        org_id = await accounts.create_organization(conn, name, None, world.ids["alice"], None)
        readable, _ = await access.create_repository(conn, org_id, name, "readable", creator=None)
        hidden, _ = await access.create_repository(conn, org_id, name, "hidden", creator=None)
        shared, own, other = (await blob(conn, f"{name} shared", 1000), await blob(conn, f"{name} own", 100),
                              await blob(conn, f"{name} other", 10))
        await tagged(conn, readable, f"{name} readable", [shared, own])
        await tagged(conn, hidden, f"{name} hidden", [shared, other])
        left_behind = await blob(conn, f"{name} left behind", 5000)
        await conn.execute("INSERT INTO repository_blobs (repository_id, blob_id) VALUES ($1, $2)", readable, left_behind)
        await recount(conn, org_id)
        team_id = await conn.fetchval("INSERT INTO teams (namespace_id, name, role) VALUES ($1, 'readers', 'member') RETURNING id",
                                      org_id)
        await conn.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)", team_id, world.ids["tom"])
        await access.set_permission(conn, readable, "team", team_id, "read")
    report = await quota.check(conn)
    assert not [p for p in report.problems if name in p], report.problems
    for actor, size in (("alice", 1110), ("root", 1110), ("tom", 1100)):
        status, body = await call(world, "GET", "browse/organizations", actor, params={"filter": name})
        assert status == 200 and [(o["name"], o["size"]) for o in body["organizations"]] == [(name, size)], actor
    assert await quota.namespace_usage(conn, org_id) == 1110


async def test_robots_teams_members_and_collaborators_page_past_any_size(world):
    conn = world.conn
    for index in range(30):
        await accounts.create_robot(conn, world.ids["acme"], f"acme+bot{index:02d}", f"robot {index}")
    rows = await names(world, "browse/organization/acme/robots", limit=25, page=2)
    assert rows == [f"acme+bot{index:02d}" for index in range(25, 30)] + ["acme+ci", "acme+idle"]
    status, body = await call(world, "GET", "browse/organization/acme/robots", params={"sort": "repositories", "order": "desc", "limit": 1})
    assert body["total"] == 32 and body["robots"][0]["name"] == "acme+ci" and body["robots"][0]["repositories"] == 1
    # A team of 45 members: every one is reachable page by page (Quay's list stops at 20).
    team = unique("staff")
    team_id = await conn.fetchval("INSERT INTO teams (namespace_id, name, role) VALUES ($1, $2, 'member') RETURNING id",
                                  world.ids["acme"], team)
    members = []
    async with conn.transaction():
        for index in range(44):
            name = f"member{index:02d}"
            members.append(name)
            user_id = await accounts.create_user(conn, name, PASSWORD)
            await conn.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)", team_id, user_id)
        await conn.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)", team_id, world.ids["tom"])
        await conn.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)", team_id, world.ids["robot_with"])
    seen = []
    for page in (1, 2, 3):
        seen += await names(world, f"browse/organization/acme/team/{team}/members", "tom", limit=20, page=page)
    assert sorted(seen) == sorted([*members, "tom", "acme+ci"]) and len(seen) == 46
    status, body = await call(world, "GET", f"browse/organization/acme/team/{team}/members", "tom",
                              params={"sort": "kind", "order": "desc", "limit": 1})
    assert body["members"] == [{"name": "acme+ci", "kind": "robot"}] and body["is_admin"] is False
    status, body = await call(world, "GET", "browse/organization/acme/teams", "tom", params={"sort": "members", "order": "desc"})
    assert status == 200 and body["teams"][0]["name"] == team and body["teams"][0]["members"] == 46
    status, body = await call(world, "GET", "browse/organization/acme/members", params={"kind": "robot"})
    assert [m["name"] for m in body["members"]] == ["acme+ci"] and body["members"][0]["repositories"] == 1
    # What a member may not read is not counted for them: a team's grant on acme/private counts for
    # alice (an administrator) and not for tom; nor do acme's private repositories in his list.
    hidden = unique("vault")
    status, _ = await call(world, "PUT", f"organization/acme/team/{hidden}", json={"role": "member"})
    status, _ = await call(world, "PUT", f"repository/acme/private/permissions/team/{hidden}", json={"role": "admin"})
    assert status == 200
    for actor, count in (("alice", 1), ("tom", 0)):
        status, body = await call(world, "GET", "browse/organization/acme/teams", actor, params={"filter": hidden})
        assert body["teams"][0]["repositories"] == count, actor
    status, body = await call(world, "GET", "browse/organization/acme/members", "tom", params={"kind": "robot"})
    assert body["members"][0]["repositories"] == 0  # acme+ci's write on acme/private
    status, body = await call(world, "GET", "browse/organizations", "tom", params={"filter": "acme"})
    assert body["organizations"][0]["repositories"] == 1  # acme/public only
    # Collaborators: direct permissions and no team (rita, walt); tom sits in a team.
    assert await names(world, "browse/organization/acme/collaborators") == ["rita", "walt"]
    # Who may list what: members see teams and members, administrators robots and collaborators.
    for path, allowed in (("teams", {"alice", "tom", "root"}), ("members", {"alice", "tom", "root"}),
                          ("robots", {"alice", "root"}), ("collaborators", {"alice", "root"})):
        for actor in ("alice", "tom", "rita", "olga", "root"):
            status, _ = await call(world, "GET", f"browse/organization/acme/{path}", actor)
            assert status == (200 if actor in allowed else 403), (path, actor, status)
    status, _ = await call(world, "GET", "browse/organization/nonesuch/teams")
    assert status == 404


async def test_repository_roles_of_a_team_or_robot(world):
    team = unique("builders")
    status, _ = await call(world, "PUT", f"organization/acme/team/{team}", json={"role": "member"})
    assert status == 201
    status, _ = await call(world, "PUT", f"repository/acme/public/permissions/team/{team}", json={"role": "admin"})
    assert status == 200
    status, body = await call(world, "GET", "browse/organization/acme/repositories", params={"team": team})
    assert {r["name"]: r["role"] for r in body["repositories"]} == {"acme/private": None, "acme/public": "admin"}
    status, body = await call(world, "GET", "browse/organization/acme/repositories", params={"member": "acme+ci", "granted": "true"})
    assert [(r["name"], r["role"]) for r in body["repositories"]] == [("acme/private", "write")] and body["total"] == 1
    status, body = await call(world, "GET", "browse/organization/acme/repositories",
                              params={"member": "rita", "sort": "role", "order": "desc"})
    assert [r["role"] for r in body["repositories"]] == ["read", None]
    status, _ = await call(world, "GET", "browse/organization/acme/repositories", params={"team": "nonesuch"})
    assert status == 404
    status, _ = await call(world, "GET", "browse/organization/acme/repositories", params={"team": team, "member": "rita"})
    assert status == 400
    status, _ = await call(world, "GET", "browse/organization/acme/repositories", "tom")
    assert status == 403


async def test_entities_for_pickers(world):
    status, body = await call(world, "GET", "entities", params={"prefix": "ri"})
    assert body["results"] == [{"name": "rita", "kind": "user"}]
    status, body = await call(world, "GET", "entities", params={"prefix": "c", "namespace": "acme"})
    assert {"name": "acme+ci", "kind": "robot"} in body["results"]
    status, body = await call(world, "GET", "entities", params={"prefix": "own", "namespace": "acme"})
    assert body["results"] == [{"name": "owners", "kind": "team"}]
    team = await world.fresh_team("tom")  # a plain member: teams, but robots are for administrators
    status, body = await call(world, "GET", "entities", "tom", params={"prefix": "t", "namespace": "acme"})
    assert body["results"] == [{"name": "tom", "kind": "user"}, {"name": team, "kind": "team"}]
    status, body = await call(world, "GET", "entities", "tom", params={"prefix": "acme", "namespace": "acme"})
    assert body["results"] == []
    status, _ = await call(world, "GET", "entities", "rita", params={"prefix": "a", "namespace": "acme"})
    assert status == 403
    status, _ = await call(world, "GET", "entities", params={"prefix": ""})
    assert status == 400
    status, _ = await call(world, "GET", "entities", "anonymous", params={"prefix": "a"})
    assert status == 401


async def test_search_finds_only_what_the_caller_may_read(world):
    root = await world.as_actor("root", "repository:acme/private:pull,push", "repository:globex/secret:pull,push")
    from tests.helpers import push_image

    private_digest, _ = await push_image(root, "acme/private", "release-2026")
    secret_digest, _ = await push_image(root, "globex/secret", "release-secret")
    status, body = await call(world, "GET", "search", "rita", params={"q": "release"})
    assert status == 200
    assert [(t["repository"], t["name"]) for t in body["tags"]] == [("acme/private", "release-2026")]
    status, body = await call(world, "GET", "search", "rita", params={"q": private_digest[7:19]})
    assert [d["digest"] for d in body["digests"]] == [private_digest] and body["digests"][0]["tags"] == ["release-2026"]
    status, body = await call(world, "GET", "search", "rita", params={"q": "acme"})
    assert [r["name"] for r in body["repositories"]] == ["acme/private", "acme/public"]
    # What rita may not read answers exactly like what does not exist.
    hidden = await call(world, "GET", "search", "rita", params={"q": secret_digest})
    missing = await call(world, "GET", "search", "rita", params={"q": "sha256:" + "0" * 64})
    assert hidden[1]["digests"] == missing[1]["digests"] == [] and hidden[0] == missing[0] == 200
    for q in ("secret", "release-secret", "globex"):
        status, body = await call(world, "GET", "search", "rita", params={"q": q})
        assert not body["repositories"] and not body["tags"], (q, body)
    status, body = await call(world, "GET", "search", "olga", params={"q": "release"})
    assert [(t["repository"], t["name"]) for t in body["tags"]] == [("globex/secret", "release-secret")]
    status, body = await call(world, "GET", "search", "anonymous", params={"q": "acme"})
    assert [r["name"] for r in body["repositories"]] == ["acme/public"]
    status, body = await call(world, "GET", "search", "root", params={"q": "re", "kind": "tags", "limit": 1, "page": 2})
    assert len(body["tags"]) == 1 and "repositories" not in body and body["has_additional"] == {"tags": False}
    # An exact name comes before names that merely contain it.
    status, body = await call(world, "GET", "search", "root", params={"q": "v1", "kind": "tags"})
    assert all(t["name"] == "v1" for t in body["tags"][:3])
    for params in ({"q": ""}, {"q": "x" * 129}, {"q": "a", "kind": "users"}, {"q": "a", "limit": "101"}):
        status, body = await call(world, "GET", "search", params=params)
        assert status == 400 and body["error_message"], params


async def test_superuser_changes_email_password_and_disables_users(world):
    status, body = await call(world, "PUT", "superuser/users/tom", "root", json={"email": "tom@new.example"})
    assert status == 200 and body["email"] == "tom@new.example"
    # tom signs in; a new password ends that session and the old password stops working.
    async with world.reg.http.post(world.api("signin"), json={"username": "tom", "password": PASSWORD}) as r:
        cookie = r.cookies["meridian_session"].value
    status, body = await call(world, "PUT", "superuser/users/tom", "root", json={"password": "a much newer password"})
    assert status == 200
    async with world.reg.http.get(world.api("session"), headers={"Cookie": f"meridian_session={cookie}"}) as r:
        assert (await r.json())["user"] is None
    async with world.reg.http.post(world.api("signin"), json={"username": "tom", "password": PASSWORD}) as r:
        assert r.status == 401
    async with world.reg.http.post(world.api("signin"), json={"username": "tom", "password": "a much newer password"}) as r:
        assert r.status == 200
    # Disabled: tom's API token and sign-in stop working; enabled again, they work.
    status, body = await call(world, "PUT", "superuser/users/tom", "root", json={"enabled": False})
    assert status == 200 and body["enabled"] is False
    status, _ = await call(world, "GET", "user/", "tom")
    assert status == 401
    status, body = await call(world, "GET", "browse/users", "root", params={"enabled": "false"})
    assert [u["username"] for u in body["users"]] == ["tom"]
    status, body = await call(world, "PUT", "superuser/users/tom", "root", json={"enabled": True})
    status, _ = await call(world, "GET", "user/", "tom")
    assert status == 200
    for body, problem in (({"enabled": "no"}, "enabled"), ({"email": "not an address"}, "e-mail"), ({"password": "short"}, "8"),
                          ({}, "give")):
        status, answer = await call(world, "PUT", "superuser/users/tom", "root", json=body)
        assert status == 400 and problem in answer["error_message"], (body, answer)
    status, answer = await call(world, "PUT", "superuser/users/root", "root", json={"enabled": False})
    assert status == 400 and "yourself" in answer["error_message"]
    status, _ = await call(world, "PUT", "superuser/users/nobody", "root", json={"enabled": False})
    assert status == 404
    status, _ = await call(world, "PUT", "superuser/users/tom", "alice", json={"enabled": False})
    assert status == 403
    status, body = await call(world, "GET", "browse/users", "root", params={"filter": "o", "sort": "name", "order": "desc"})
    assert [u["username"] for u in body["users"]] == ["tom", "root", "olga"] and body["users"][1]["super_user"] is True
    status, _ = await call(world, "GET", "browse/users", "alice")
    assert status == 403


async def test_registry_status_and_registry_wide_logs(world):
    status, body = await call(world, "GET", "superuser/registrystatus", "root")
    assert status == 200 and body["state"] == "normal" and body["ready_for_read_only"] is False
    assert body["signing_key"]["kid"] and "meridian keys" in body["next_step"]
    key = SigningKey.generate()
    await register(world.conn, kid=key.kid, name="read-only", service="quay", jwk=key.jwk, expires_at=None, approval_type=None)
    status, body = await call(world, "GET", "superuser/registrystatus", "root")
    assert body["ready_for_read_only"] is False and body["unapproved_keys"] == 1
    status, _ = await call(world, "PUT", f"superuser/keys/{key.kid}", "root", json={"approve": True})
    assert status == 200
    status, body = await call(world, "GET", "superuser/registrystatus", "root")
    assert body["ready_for_read_only"] is True and [k["kid"] for k in body["read_only_keys"]] == [key.kid]
    status, _ = await call(world, "GET", "superuser/registrystatus", "alice")
    assert status == 403
    # Registry-wide logs hold every namespace's rows; kind filters them, here and per organisation.
    status, _ = await call(world, "PUT", "organization/acme", json={"email": "ops@acme.example"})
    status, _ = await call(world, "PUT", "organization/globex", "olga", json={"email": "ops@globex.example"})
    status, body = await call(world, "GET", "superuser/logs", "root", params={"kind": "org_change_details"})
    assert status == 200 and sorted(row["namespace"] for row in body["logs"]) == ["acme", "globex"]
    status, body = await call(world, "GET", "superuser/aggregatelogs", "root", params={"kind": "org_change_details"})
    assert [(a["kind"], a["count"]) for a in body["aggregated"]] == [("org_change_details", 2)]
    status, body = await call(world, "GET", "organization/acme/logs", params={"kind": "org_change_details"})
    assert [row["kind"] for row in body["logs"]] == ["org_change_details"]
    status, body = await call(world, "GET", "organization/acme/aggregatelogs", params={"kind": "no_such_kind"})
    assert body["aggregated"] == []
    status, _ = await call(world, "GET", "superuser/logs", "alice")
    assert status == 403


async def test_listed_repositories_are_exactly_the_readable_ones(world):
    """browse/repositories computes ranks by joins (shared/model/browse.joined_rank); each caller's
    list must be exactly what the per-repository check (access.role_rank_sql) lets them read."""
    team = await world.fresh_team("tom")
    repo = await world.fresh_repo()
    await world.conn.execute("INSERT INTO repository_permissions (repository_id, team_id, role) SELECT r.id, t.id, 'read' "
                             "FROM repositories r, teams t WHERE r.full_name = $1 AND t.name = $2", repo, team)
    everything = ["acme/private", "acme/public", "globex/secret", repo]
    for actor in ("anonymous", "rita", "walt", "alice", "olga", "tom", "root"):
        status, body = await call(world, "GET", "browse/repositories", actor, params={"limit": 100})
        listed = {f"{r['namespace']}/{r['name']}" for r in body["repositories"]}
        readable = set()
        for name in everything:
            status, _ = await call(world, "GET", f"repository/{name}", actor)
            if status == 200:
                readable.add(name)
        assert listed == readable, actor
        assert body["total"] == len(listed)


async def test_own_namespace_comes_first_where_repositories_may_be_created(world):
    """The create-repository dialog preselects the first namespace: the user's own, before every
    organisation (an organisation has no owner, and NULL must not sort first)."""
    status, body = await call(world, "GET", "session")
    assert body["user"]["creatable_namespaces"] == [{"name": "alice", "kind": "user"}, {"name": "acme", "kind": "organization"}]
