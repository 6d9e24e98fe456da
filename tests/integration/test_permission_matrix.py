"""Every /api/v1 and /v2 route × every kind of caller gets exactly what its role allows, and nothing
private leaks: a caller who may not read a repository gets the same answer as for a missing one.

Each route states the right it needs and how to make a fresh target, so destructive calls by one
caller never change what the next one sees. The tables must name every route of the route tables.
"""
from __future__ import annotations

import json
import os

from services.gateway.api.routes import API_ROUTES
from services.gateway.v2.routes import ROUTES as V2_ROUTES
from tests.helpers import OCI_CONFIG, OCI_MANIFEST, descriptor, eventually, push_blob, push_image, sha256
from tests.identity_world import ACTORS, PASSWORD, ROBOTS, unique

USERS_ONLY = ("rita", "walt", "alice", "olga", "root")


def expected_api(level: str, actor: str) -> int | None:
    """None = allowed (2xx); else the exact refusal status. Repository rights are on acme repositories."""
    if level == "anyone":
        return None
    if actor in ROBOTS:
        return 401  # robots have no API credentials: their token is not an API token
    if level == "optional":
        return None
    reads = {"rita", "walt", "alice", "root"}
    if level == "repo-read":
        return None if actor in reads else 404
    if actor == "anonymous":
        return 401
    table = {
        "self": set(USERS_ONLY),
        "repo-write": {"walt", "alice", "root"},
        "repo-admin": {"alice", "root"},
        "org-member": {"alice", "root"},
        "org-admin": {"alice", "root"},
        "org-creator": {"alice", "root"},
        "superuser": {"root"},
    }
    if actor in table[level]:
        return None
    if level.startswith("repo-"):
        return 403 if actor in reads else 404  # who cannot read it must not learn it exists
    return 403


async def _own_export(world, actor):
    if actor not in USERS_ONLY:
        return "00000000-0000-0000-0000-000000000000"
    async with world.reg.http.post(world.api("user/exportlogs"), headers=world.api_headers(actor),
                                   json={"callback_url": f"{world.url}/nowhere"}) as r:
        assert r.status == 202, await r.text()
        export_id = (await r.json())["export_id"]

    async def done():
        return await world.conn.fetchval("SELECT status = 'done' FROM log_exports WHERE id = $1::uuid", export_id)

    await eventually(done, what="the export to finish")
    return export_id


async def _token_id(world, actor):
    if actor not in USERS_ONLY:
        return "1"
    from shared.model import accounts

    return str((await accounts.create_api_token(world.conn, world.ids[actor]))[0])


async def _prototype(world, actor):
    team = await world.fresh_team()
    return str(await world.conn.fetchval(
        "INSERT INTO default_permissions (id, namespace_id, delegate_team_id, role) "
        "SELECT gen_random_uuid(), $1, id, 'read' FROM teams WHERE name = $2 RETURNING id", world.ids["acme"], team))


async def _team_grant(world, actor):
    repo = await world.fresh_repo()
    team = await world.fresh_team()
    await world.conn.execute(
        "INSERT INTO repository_permissions (repository_id, team_id, role) SELECT r.id, t.id, 'read' FROM repositories r, teams t "
        "WHERE r.full_name = $1 AND t.name = $2", repo, team)
    return repo, team


# (route name, method) -> (level, async prepare(world, actor) -> (path, json body or None))
def api_cases():
    def fixed(path, body=None):
        async def prepare(world, actor):
            return path, body
        return prepare

    async def new_user(world, actor):
        name = unique("user")
        from shared.model import accounts
        async with world.conn.transaction():
            await accounts.create_user(world.conn, name, PASSWORD)
        return f"superuser/users/{name}", None

    async def new_repo(world, actor, suffix="", body=None):
        return f"repository/{await world.fresh_repo()}{suffix}", body

    async def team_grant_path(world, actor):
        repo, team = await _team_grant(world, actor)
        return f"repository/{repo}/permissions/team/{team}", {"role": "write"}

    return {
        ("signin", "POST"): ("anyone", fixed("signin", {"username": "rita", "password": PASSWORD})),
        ("signout", "POST"): ("self", fixed("signout")),
        ("user", "GET"): ("self", fixed("user/")),
        ("user_tokens", "GET"): ("self", fixed("user/tokens")),
        ("user_tokens", "POST"): ("self", fixed("user/tokens", {"title": "matrix"})),
        ("user_token", "DELETE"): ("self", lambda w, a: _wrap(_token_id(w, a), "user/tokens/{}")),
        ("superuser_users", "GET"): ("superuser", fixed("superuser/users/")),
        ("superuser_users", "POST"): ("superuser",
                                      lambda w, a: _value(("superuser/users/", {"username": unique("made"), "password": PASSWORD}))),
        ("superuser_user", "DELETE"): ("superuser", new_user),
        ("organizations", "POST"): ("self", lambda w, a: _value(("organization/", {"name": unique("neworg")}))),
        ("organization", "GET"): ("optional", fixed("organization/acme")),
        ("organization", "PUT"): ("org-admin", fixed("organization/acme", {"email": "ops@acme.example"})),
        ("organization", "DELETE"): ("org-admin", lambda w, a: _wrap(w.fresh_org(), "organization/{}", fresh_org_admin=True)),
        ("organization_members", "GET"): ("org-member", fixed("organization/acme/members")),
        ("teams", "POST"): ("org-admin", lambda w, a: _value(("organization/acme/team/", {"name": unique("t"), "role": "member"}))),
        ("team", "PUT"): ("org-admin", lambda w, a: _value((f"organization/acme/team/{unique('t')}", {"role": "creator"}))),
        ("team", "DELETE"): ("org-admin", lambda w, a: _wrap(w.fresh_team(), "organization/acme/team/{}")),
        ("team_members", "GET"): ("org-member", fixed("organization/acme/team/owners/members")),
        ("team_member", "PUT"): ("org-admin", lambda w, a: _wrap(w.fresh_team(), "organization/acme/team/{}/members/tom")),
        ("team_member", "DELETE"): ("org-admin", lambda w, a: _wrap(w.fresh_team("tom"), "organization/acme/team/{}/members/tom")),
        ("team_permissions", "GET"): ("org-member", fixed("organization/acme/team/owners/permissions")),
        ("robots", "GET"): ("org-admin", fixed("organization/acme/robots?permissions=true")),
        ("robot", "GET"): ("org-admin", fixed("organization/acme/robots/ci")),
        ("robot", "PUT"): ("org-admin", lambda w, a: _value((f"organization/acme/robots/{unique('r')}", {"description": "m"}))),
        ("robot", "DELETE"): ("org-admin", lambda w, a: _wrap(w.fresh_robot(), "organization/acme/robots/{}")),
        ("robot_regenerate", "POST"): ("org-admin", lambda w, a: _wrap(w.fresh_robot(), "organization/acme/robots/{}/regenerate")),
        ("robot_permissions", "GET"): ("org-admin", fixed("organization/acme/robots/ci/permissions")),
        ("robot_permissions", "PUT"): ("org-admin", lambda w, a: _wrap(w.fresh_robot(), "organization/acme/robots/{}/permissions",
                                                                       body={"permissions": {"acme/public": "read"}})),
        ("prototypes", "GET"): ("org-admin", fixed("organization/acme/prototypes")),
        ("prototypes", "POST"): ("org-admin", fixed("organization/acme/prototypes",
                                                    {"role": "read", "delegate": {"name": "owners", "kind": "team"}})),
        ("prototype", "PUT"): ("org-admin",
                               lambda w, a: _wrap(_prototype(w, a), "organization/acme/prototypes/{}", body={"role": "write"})),
        ("prototype", "DELETE"): ("org-admin", lambda w, a: _wrap(_prototype(w, a), "organization/acme/prototypes/{}")),
        ("repo_user_permissions", "GET"): ("repo-admin", fixed("repository/acme/private/permissions/user/")),
        ("repo_team_permissions", "GET"): ("repo-admin", fixed("repository/acme/private/permissions/team/")),
        ("repo_user_permission", "GET"): ("repo-admin", fixed("repository/acme/private/permissions/user/rita")),
        ("repo_user_permission", "PUT"): ("repo-admin", lambda w, a: new_repo(w, a, "/permissions/user/olga", {"role": "read"})),
        ("repo_user_permission", "DELETE"): ("repo-admin", lambda w, a: new_repo(w, a, "/permissions/user/rita")),
        ("repo_team_permission", "GET"): ("repo-admin", lambda w, a: _team_path(w, a)),
        ("repo_team_permission", "PUT"): ("repo-admin", team_grant_path),
        ("repo_team_permission", "DELETE"): ("repo-admin", lambda w, a: _team_path(w, a)),
        ("organization_logs", "GET"): ("org-admin", fixed("organization/acme/logs")),
        ("organization_aggregatelogs", "GET"): ("org-admin", fixed("organization/acme/aggregatelogs")),
        ("organization_exportlogs", "POST"): ("org-admin", lambda w, a: _value(("organization/acme/exportlogs",
                                                                                {"callback_url": f"{w.url}/nowhere"}))),
        ("repository_logs", "GET"): ("repo-admin", fixed("repository/acme/private/logs")),
        ("repository_aggregatelogs", "GET"): ("repo-admin", fixed("repository/acme/private/aggregatelogs")),
        ("repository_exportlogs", "POST"): ("repo-admin", lambda w, a: _value(("repository/acme/private/exportlogs",
                                                                               {"callback_url": f"{w.url}/nowhere"}))),
        ("user_logs", "GET"): ("self", fixed("user/logs")),
        ("user_aggregatelogs", "GET"): ("self", fixed("user/aggregatelogs")),
        ("user_exportlogs", "POST"): ("self", lambda w, a: _value(("user/exportlogs", {"callback_url": f"{w.url}/nowhere"}))),
        ("export", "GET"): ("self", lambda w, a: _wrap(_own_export(w, a), "exportlogs/{}")),
        ("export_file", "GET"): ("self", lambda w, a: _wrap(_own_export(w, a), "exportlogs/{}/file")),
        ("namespace_replication", "GET"): ("org-member", fixed("organization/acme/replication")),
        ("namespace_replication", "PUT"): ("org-admin", fixed("organization/acme/replication", {"locations": ["local"]})),
        ("manifest_replication", "GET"): ("repo-read", lambda w, a: _value(
            (f"repository/acme/private/manifest/{w.private_digest}/replication", None))),
        ("repository_state", "PUT"): ("repo-admin", lambda w, a: new_repo(w, a, "/changestate", {"state": "NORMAL"})),
        ("repository_visibility", "POST"): ("repo-admin", lambda w, a: new_repo(w, a, "/changevisibility", {"visibility": "private"})),
        ("repository", "GET"): ("repo-read", fixed("repository/acme/private")),
        ("repository", "PUT"): ("repo-write", lambda w, a: new_repo(w, a, "", {"description": "changed"})),
        ("repository", "DELETE"): ("repo-admin", lambda w, a: new_repo(w, a)),
        ("repositories", "GET"): ("optional", fixed("repository?namespace=acme")),
        ("repositories", "POST"): ("org-creator",
                                   lambda w, a: _value(("repository", {"namespace": "acme", "repository": unique("made")}))),
        ("discovery", "GET"): ("anyone", fixed("discovery")),
        ("session", "GET"): ("optional", fixed("session")),
        ("browse_repositories", "GET"): ("optional", fixed("browse/repositories?sort=last_modified&order=desc")),
        ("browse_tags", "GET"): ("repo-read", fixed("browse/repository/acme/private/tags")),
        ("browse_manifest", "GET"): ("repo-read", lambda w, a: _value(
            (f"browse/repository/acme/private/manifest/{w.private_digest}", None))),
        ("browse_locations", "GET"): ("self", fixed("browse/locations")),
        ("browse_organizations", "GET"): ("self", fixed("browse/organizations?sort=size&order=desc")),
        ("browse_robots", "GET"): ("org-admin", fixed("browse/organization/acme/robots?sort=repositories")),
        ("browse_teams", "GET"): ("org-member", fixed("browse/organization/acme/teams")),
        ("browse_members", "GET"): ("org-member", fixed("browse/organization/acme/members")),
        ("browse_collaborators", "GET"): ("org-admin", fixed("browse/organization/acme/collaborators")),
        ("browse_team_members", "GET"): ("org-member", fixed("browse/organization/acme/team/owners/members")),
        ("browse_repository_roles", "GET"): ("org-admin", fixed("browse/organization/acme/repositories?member=acme%2Bci")),
        ("browse_users", "GET"): ("superuser", fixed("browse/users")),
        ("entities", "GET"): ("self", fixed("entities?prefix=a")),
        ("search", "GET"): ("optional", fixed("search?q=v1")),
        ("superuser_registrystatus", "GET"): ("superuser", fixed("superuser/registrystatus")),
        ("superuser_logs", "GET"): ("superuser", fixed("superuser/logs?kind=org_create")),
        ("superuser_aggregatelogs", "GET"): ("superuser", fixed("superuser/aggregatelogs")),
        ("superuser_user", "PUT"): ("superuser", lambda w, a: _with_body(new_user(w, a), {"email": "changed@example.com"})),
        ("superuser_keys", "GET"): ("superuser", fixed("superuser/keys")),
        ("superuser_keys", "POST"): ("superuser", lambda w, a: _value(("superuser/keys", {"jwk": _fresh_jwk(), "expiration_days": 1}))),
        ("superuser_key", "PUT"): ("superuser", lambda w, a: _wrap(_registered_key(w), "superuser/keys/{}", body={"expiration_days": 2})),
        ("superuser_key", "DELETE"): ("superuser", lambda w, a: _wrap(_registered_key(w), "superuser/keys/{}")),
        ("tags", "GET"): ("repo-read", fixed("repository/acme/private/tag/")),
        ("tags_expiration", "PUT"): ("repo-write", lambda w, a: _value(("repository/acme/private/tags/expiration",
                                                                        {"tags": ["v1"], "expiration": None}))),
        ("tag_restore", "POST"): ("repo-write", lambda w, a: _value(("repository/acme/private/tag/v1/restore",
                                                                     {"manifest_digest": w.private_digest}))),
        ("tag_expire", "POST"): ("repo-write", lambda w, a: _wrap(_ended_tag(w), "repository/acme/private/tag/{}/expire", body={})),
        ("tag", "GET"): ("repo-read", fixed("repository/acme/private/tag/v1")),
        ("tag", "PUT"): ("repo-write", lambda w, a: _value((f"repository/acme/private/tag/{unique('t')}",
                                                           {"manifest_digest": w.private_digest}))),
        ("tag", "DELETE"): ("repo-write", lambda w, a: _wrap(_live_tag(w), "repository/acme/private/tag/{}")),
        ("labels", "GET"): ("repo-read", lambda w, a: _value((f"repository/acme/private/manifest/{w.private_digest}/labels", None))),
        ("labels", "POST"): ("repo-write", lambda w, a: _value((f"repository/acme/private/manifest/{w.private_digest}/labels",
                                                               {"label": "matrix=yes"}))),
        ("label", "GET"): ("repo-read", lambda w, a: _label_path(w)),
        ("label", "DELETE"): ("repo-write", lambda w, a: _label_path(w)),
        **quota_cases(),
        **notification_cases(),
    }


# Quotas (issue 16): fresh organisations and users, so creating one never meets the last caller's.
def quota_cases():
    limit = {"type": "Warning", "threshold_percent": 80}
    return {
        ("organization_quotas", "GET"): ("org-member", lambda w, a: _value(("organization/acme/quota", None))),
        ("organization_quotas", "POST"): ("org-admin", lambda w, a: _wrap(w.fresh_org(), "organization/{}/quota",
                                                                         body={"limit_bytes": 10 ** 6})),
        ("organization_quota", "GET"): ("org-member", lambda w, a: _quota_path(w, "")),
        ("organization_quota", "PUT"): ("org-admin", lambda w, a: _quota_path(w, "", {"limit": "2 MiB"})),
        ("organization_quota", "DELETE"): ("org-admin", lambda w, a: _quota_path(w, "")),
        ("organization_quota_limits", "GET"): ("org-member", lambda w, a: _quota_path(w, "/limit")),
        ("organization_quota_limits", "POST"): ("org-admin", lambda w, a: _quota_path(w, "/limit", limit)),
        ("organization_quota_limit", "GET"): ("org-member", lambda w, a: _quota_path(w, "/limit/{limit}")),
        ("organization_quota_limit", "PUT"): ("org-admin", lambda w, a: _quota_path(w, "/limit/{limit}", {"threshold_percent": 90})),
        ("organization_quota_limit", "DELETE"): ("org-admin", lambda w, a: _quota_path(w, "/limit/{limit}")),
        ("user_quota_report", "GET"): ("self", lambda w, a: _value(("user/quota/report", None))),
        ("user_quotas", "GET"): ("self", lambda w, a: _value(("user/quota", None))),
        ("user_quota", "GET"): ("self", lambda w, a: _own_quota_path(w, a, "")),
        ("user_quota_limits", "GET"): ("self", lambda w, a: _own_quota_path(w, a, "/limit")),
        ("superuser_user_quotas", "GET"): ("superuser", lambda w, a: _value(("superuser/users/tom/quota", None))),
        ("superuser_user_quotas", "POST"): ("superuser", lambda w, a: _wrap(_fresh_user(w), "superuser/users/{}/quota",
                                                                           body={"limit": "1 GiB"})),
        ("superuser_user_quota", "PUT"): ("superuser", lambda w, a: _user_quota_path(w, "", {"limit_bytes": 5})),
        ("superuser_user_quota", "DELETE"): ("superuser", lambda w, a: _user_quota_path(w, "")),
        ("superuser_user_quota_limits", "POST"): ("superuser", lambda w, a: _user_quota_path(w, "/limit", limit)),
        ("superuser_user_quota_limit", "PUT"): ("superuser", lambda w, a: _user_quota_path(w, "/limit/{limit}", {"type": "Reject"})),
        ("superuser_user_quota_limit", "DELETE"): ("superuser", lambda w, a: _user_quota_path(w, "/limit/{limit}")),
    }


async def _quota_in(world, namespace: str) -> tuple[int, int]:
    quota_id = await world.conn.fetchval(
        "INSERT INTO namespace_quotas (namespace_id, limit_bytes) SELECT id, 1048576 FROM namespaces WHERE name = $1 "
        "ON CONFLICT (namespace_id) DO UPDATE SET limit_bytes = 1048576 RETURNING id", namespace)
    limit_id = await world.conn.fetchval(
        "INSERT INTO namespace_quota_limits (quota_id, kind, percent) VALUES ($1, 'Warning', $2) RETURNING id",
        quota_id, 1 + await world.conn.fetchval("SELECT count(*) FROM namespace_quota_limits WHERE quota_id = $1", quota_id) % 99)
    return quota_id, limit_id


async def _quota_path(world, tail: str, body=None):
    org = await world.fresh_org()
    quota_id, limit_id = await _quota_in(world, org)
    return f"organization/{org}/quota/{quota_id}{tail.format(limit=limit_id)}", body


async def _own_quota_path(world, actor: str, tail: str):
    if actor not in USERS_ONLY:
        return f"user/quota/1{tail}", None
    quota_id, _ = await _quota_in(world, actor)
    return f"user/quota/{quota_id}{tail}", None


async def _fresh_user(world) -> str:
    from shared.model import accounts

    name = unique("quser")
    async with world.conn.transaction():
        await accounts.create_user(world.conn, name, PASSWORD)
    return name


async def _user_quota_path(world, tail: str, body=None):
    name = await _fresh_user(world)
    quota_id, limit_id = await _quota_in(world, name)
    return f"superuser/users/{name}/quota/{quota_id}{tail.format(limit=limit_id)}", body


# Notifications (issue 16): on acme/private and on acme itself; fresh ones where a call changes them.
def notification_cases():
    def create_body(world):
        return {"event": "repo_push", "method": "webhook", "config": {"url": f"{world.url}/hook"}}

    return {
        ("repository_notifications", "GET"): ("repo-admin", lambda w, a: _value(("repository/acme/private/notification/", None))),
        ("repository_notifications", "POST"): ("repo-admin", lambda w, a: _value(("repository/acme/private/notification/",
                                                                                  create_body(w)))),
        ("repository_notification", "GET"): ("repo-admin", lambda w, a: _notification_path(w, "acme/private", "")),
        ("repository_notification", "POST"): ("repo-admin", lambda w, a: _notification_path(w, "acme/private", "", {})),
        ("repository_notification", "DELETE"): ("repo-admin", lambda w, a: _notification_path(w, "acme/private", "")),
        ("repository_notification_test", "POST"): ("repo-admin", lambda w, a: _notification_path(w, "acme/private", "/test", {})),
        ("repository_notification_deliveries", "GET"): ("repo-admin",
                                                        lambda w, a: _notification_path(w, "acme/private", "/deliveries")),
        ("organization_notifications", "GET"): ("org-admin", lambda w, a: _value(("organization/acme/notifications", None))),
        ("organization_notifications", "POST"): ("org-admin", lambda w, a: _value(("organization/acme/notifications",
                                                                                   create_body(w)))),
        ("organization_notification", "GET"): ("org-admin", lambda w, a: _notification_path(w, None, "")),
        ("organization_notification", "POST"): ("org-admin", lambda w, a: _notification_path(w, None, "", {})),
        ("organization_notification", "DELETE"): ("org-admin", lambda w, a: _notification_path(w, None, "")),
        ("organization_notification_test", "POST"): ("org-admin", lambda w, a: _notification_path(w, None, "/test", {})),
        ("organization_notification_deliveries", "GET"): ("org-admin", lambda w, a: _notification_path(w, None, "/deliveries")),
    }


async def _notification_path(world, repository: str | None, tail: str, body=None):
    made = await world.conn.fetchval(
        "INSERT INTO notifications (uuid, namespace_id, repository_id, event, method, config, secret) "
        "SELECT gen_random_uuid(), $1, (SELECT id FROM repositories WHERE full_name = $2), 'repo_push', 'webhook', "
        "jsonb_build_object('url', $3::text), 'secret' RETURNING uuid", world.ids["acme"], repository, f"{world.url}/hook")
    base = f"repository/{repository}/notification" if repository else "organization/acme/notifications"
    return f"{base}/{made}{tail}", body


async def _value(value):
    return value


async def _with_body(awaitable, body):
    path, _ = await awaitable
    return path, body


def _fresh_jwk() -> dict:
    from shared.servicekeys import SigningKey

    return SigningKey.generate().jwk


async def _registered_key(world) -> str:
    from shared.servicekeys import SigningKey, register

    key = SigningKey.generate()
    await register(world.conn, kid=key.kid, name="matrix", service="quay", jwk=key.jwk, expires_at=None, approval_type="cli")
    return key.kid


async def _tag_row(world, ended: bool) -> str:
    name = unique("t")
    await world.conn.execute(
        "INSERT INTO tags (repository_id, name, manifest_id, lifetime_start, lifetime_end) "
        "SELECT repository_id, $2, id, now() - interval '1 hour', CASE WHEN $3 THEN now() - interval '1 minute' END "
        "FROM manifests WHERE digest = $1 AND repository_id = (SELECT id FROM repositories WHERE full_name = 'acme/private')",
        world.private_digest, name, ended)
    return name


async def _ended_tag(world) -> str:
    return await _tag_row(world, True)


async def _live_tag(world) -> str:
    return await _tag_row(world, False)


async def _label_path(world):
    label_id = await world.conn.fetchval(
        "INSERT INTO labels (id, manifest_id, key, value, source_type) SELECT gen_random_uuid(), id, 'k', 'v', 'api' "
        "FROM manifests WHERE digest = $1 AND repository_id = (SELECT id FROM repositories WHERE full_name = 'acme/private') "
        "RETURNING id", world.private_digest)
    return f"repository/acme/private/manifest/{world.private_digest}/labels/{label_id}", None


async def _wrap(awaitable, template, body=None, fresh_org_admin=False):
    return template.format(await awaitable), body


async def _team_path(world, actor):
    repo, team = await _team_grant(world, actor)
    return f"repository/{repo}/permissions/team/{team}", None


async def test_api_permission_matrix(world):
    cases = api_cases()
    routes = {(route.name, method) for route in API_ROUTES for method in route.ops}
    assert routes == set(cases), f"matrix and route table differ: {routes ^ set(cases)}"
    failures = []
    for (_name, method), (level, prepare) in sorted(cases.items()):
        for actor in ACTORS:
            path, body = await prepare(world, actor)
            kwargs = {"json": body} if body is not None else {}
            async with world.reg.http.request(method, world.api(path), headers=world.api_headers(actor), **kwargs) as r:
                status, text = r.status, await r.text()
            want = expected_api(level, actor)
            ok = 200 <= status < 300 if want is None else status == want
            if not ok:
                failures.append(f"{method} {path} as {actor}: got {status}, want {want or '2xx'}: {text[:160]}")
            if status >= 400:
                error = json.loads(text)
                assert error["status"] == status and error["error_message"], text
    assert not failures, "\n".join(failures)


async def test_no_private_name_leaks_through_listings(world):
    for actor, sees_private in (("anonymous", False), ("olga", False), ("rita", True), ("root", True)):
        async with world.reg.http.get(world.api("repository"), headers=world.api_headers(actor)) as r:
            names = {f"{x['namespace']}/{x['name']}" for x in (await r.json())["repositories"]}
        assert ("acme/private" in names) is sees_private, actor
        assert "acme/public" in names
        assert ("globex/secret" in names) is (actor in ("olga", "root"))
        session = await world.as_actor(actor, "registry:catalog:*")
        async with session.http.get(session.v2("_catalog")) as r:
            catalog = set((await r.json())["repositories"])
        assert ("acme/private" in catalog) is sees_private, actor
        assert ("globex/secret" in catalog) is (actor in ("olga", "root"))
    # A private repository answers exactly like a missing one.
    answers = []
    for name in ("acme/private", "acme/nonexistent"):
        async with world.reg.http.get(world.api(f"repository/{name}"), headers=world.api_headers("olga")) as r:
            answers.append((r.status, (await r.json())["error_type"]))
        session = await world.as_actor("olga", f"repository:{name}:pull")
        async with session.http.get(session.v2(f"{name}/manifests/v1")) as r:
            answers.append((r.status, (await r.json())["errors"][0]["code"]))
    assert answers[:2] == answers[2:] == [(404, "not_found"), (404, "NAME_UNKNOWN")]


V2_READ = {"rita", "walt", "alice", "robot_with", "root"}
V2_WRITE = {"walt", "alice", "robot_with", "root"}


def expected_v2(level: str, actor: str) -> int | None:
    if level == "any":
        return None
    allowed = V2_READ if level == "read" else V2_WRITE
    if actor in allowed:
        return None
    return 403 if actor in V2_READ else 404


async def test_v2_permission_matrix(world):
    root = await world.as_actor("root", "repository:acme/private:pull,push,delete")

    async def open_session():
        async with root.http.post(root.v2("acme/private/blobs/uploads/")) as r:
            assert r.status == 202
            return r.headers["Location"]

    async def fresh_blob():
        return await push_blob(root, "acme/private", os.urandom(64))

    async def manifest_body():
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(4).hex()}).encode()
        await push_blob(root, "acme/private", config)
        return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config), "layers": []}).encode()

    async def fresh_tag():
        tag = unique("t")
        await push_image(root, "acme/private", tag)
        return tag

    chunk = b"chunk of bytes"
    cases = {
        ("base", "GET"): ("any", lambda: _value(("/v2/", None, {}))),
        ("base", "HEAD"): ("any", lambda: _value(("/v2/", None, {}))),
        ("catalog", "GET"): ("any", lambda: _value(("/v2/_catalog", None, {}))),
        ("auth", "GET"): ("any", lambda: _value(("/v2/auth?scope=repository:acme/private:pull", None, {}))),
        ("tags", "GET"): ("read", lambda: _value(("/v2/acme/private/tags/list", None, {}))),
        ("referrers", "GET"): ("read", lambda: _value((f"/v2/acme/private/referrers/{world.private_digest}", None, {}))),
        ("blob", "GET"): ("read", lambda: _digest_path(fresh_blob(), "/v2/acme/private/blobs/{}")),
        ("blob", "HEAD"): ("read", lambda: _digest_path(fresh_blob(), "/v2/acme/private/blobs/{}")),
        ("blob", "DELETE"): ("write", lambda: _digest_path(fresh_blob(), "/v2/acme/private/blobs/{}")),
        ("manifest", "GET"): ("read", lambda: _value(("/v2/acme/private/manifests/v1", None, {}))),
        ("manifest", "HEAD"): ("read", lambda: _value(("/v2/acme/private/manifests/v1", None, {}))),
        ("manifest", "PUT"): ("write", lambda: _manifest_put(manifest_body())),
        ("manifest", "DELETE"): ("write", lambda: _digest_path(fresh_tag(), "/v2/acme/private/manifests/{}")),
        ("upload_start", "POST"): ("write", lambda: _value(("/v2/acme/private/blobs/uploads/", None, {}))),
        ("upload", "GET"): ("write", lambda: _digest_path(open_session(), "{}")),
        ("upload", "PATCH"): ("write", lambda: _session_call(open_session(), "", chunk)),
        ("upload", "PUT"): ("write", lambda: _session_call(open_session(), f"digest={sha256(chunk)}", chunk)),
        ("upload", "DELETE"): ("write", lambda: _digest_path(open_session(), "{}")),
    }
    routes = {(route.name, method) for route in V2_ROUTES for method in route.methods}
    assert routes == set(cases), f"matrix and route table differ: {routes ^ set(cases)}"
    scope = "repository:acme/private:pull,push,delete"
    tokens = {actor: await world.v2_token(actor, scope, "registry:catalog:*") for actor in ACTORS}
    failures = []
    for (name, method), (level, prepare) in sorted(cases.items()):
        for actor in ACTORS:
            path, body, headers = await prepare()
            url = path if path.startswith("http") else f"{world.url}{path}"
            # /v2/auth takes the caller's credentials; every other route the token it issued.
            authorization = world.credentials(actor) if name == "auth" else f"Bearer {tokens[actor]}"
            headers = {**({"Authorization": authorization} if authorization else {}), **headers}
            async with world.reg.http.request(method, url, data=body, headers=headers) as r:
                status, text = r.status, (await r.read()).decode(errors="replace")
            want = expected_v2(level, actor)
            ok = 200 <= status < 300 if want is None else status == want
            if not ok:
                failures.append(f"{method} {path} as {actor}: got {status}, want {want or '2xx'}: {text[:160]}")
    assert not failures, "\n".join(failures)


async def _digest_path(awaitable, template):
    return template.format(await awaitable), None, {}


async def _manifest_put(awaitable):
    return f"/v2/acme/private/manifests/{unique('m')}", await awaitable, {"Content-Type": OCI_MANIFEST}


async def _session_call(awaitable, query, body):
    location = await awaitable
    sep = "&" if "?" in location else "?"
    return location + (sep + query if query else ""), body, {"Content-Type": "application/octet-stream"}
