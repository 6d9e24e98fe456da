"""Every /api/v1 and /v2 route × every kind of caller gets exactly what its role allows, and nothing
private leaks: a caller who may not read a repository gets the same answer as for a missing one.

The matrix is data: MATRIX names every route of both route tables once, with the right it needs (its
level) and how to make a fresh target, so destructive calls by one caller never change what the next
one sees; EXPECTED says, per level, the status each principal gets. Together they are the table
principal × route × expected status that the tests below walk, and a route without a row (or a row
without a route) fails `test_matrix_is_one_table_over_every_route`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from services.gateway.api.routes import API_ROUTES
from services.gateway.v2.routes import ROUTES as V2_ROUTES
from tests.helpers import OCI_CONFIG, OCI_MANIFEST, descriptor, eventually, push_blob, push_image, sha256
from tests.identity_world import ACTORS, PASSWORD, unique

# The principals (tests/identity_world.py's cast, plus two members of acme's teams made here):
#   anonymous      no credentials                    rita   user with read on acme/private
#   walt           user with write on acme/private   alice  owner (acme's owners team)
#   robot_with     robot acme+ci, write              robot_without  robot acme+idle, no permission
#   olga           another organisation's owner      root   superuser
#   mia            plain member (a team of acme with no grant)
#   tess           team reader (a team of acme with read on acme/private)
PRINCIPALS = (*ACTORS, "mia", "tess")
USERS_ONLY = ("rita", "walt", "alice", "olga", "root", "mia", "tess")
OK = None  # any 2xx

# level -> the status each principal gets, in PRINCIPALS order. Repository levels are about acme
# repositories; whoever may not read a repository gets 404 (as for a missing one), whoever may read
# it but lacks the right 403; robots have no API credentials (401 on every API route that needs any);
# an anonymous write on /v2 is asked for credentials (401, alike for every repository).
_COLUMNS = ("anonymous", "rita", "walt", "alice", "robot_with", "robot_without", "olga", "root", "mia", "tess")
_LEVELS = {
    #                  anonymous rita walt alice robot robot_ olga root  mia   tess
    #                                              _with without
    "api:anyone":      (OK,  OK,  OK,  OK,  OK,  OK,  OK,  OK,  OK,  OK),
    "api:optional":    (OK,  OK,  OK,  OK,  401, 401, OK,  OK,  OK,  OK),
    "api:self":        (401, OK,  OK,  OK,  401, 401, OK,  OK,  OK,  OK),
    "api:repo-read":   (404, OK,  OK,  OK,  401, 401, 404, OK,  404, OK),
    "api:repo-write":  (401, 403, OK,  OK,  401, 401, 404, OK,  404, 403),
    "api:repo-admin":  (401, 403, 403, OK,  401, 401, 404, OK,  404, 403),
    "api:org-member":  (401, 403, 403, OK,  401, 401, 403, OK,  OK,  OK),
    "api:org-admin":   (401, 403, 403, OK,  401, 401, 403, OK,  403, 403),
    "api:org-creator": (401, 403, 403, OK,  401, 401, 403, OK,  403, 403),
    "api:superuser":   (401, 403, 403, 403, 401, 401, 403, OK,  403, 403),
    "v2:any":          (OK,  OK,  OK,  OK,  OK,  OK,  OK,  OK,  OK,  OK),
    "v2:read":         (404, OK,  OK,  OK,  OK,  404, 404, OK,  404, OK),
    "v2:write":        (401, 403, OK,  OK,  OK,  404, 404, OK,  404, 403),
}
assert _COLUMNS == PRINCIPALS
EXPECTED: dict[str, dict[str, int | None]] = {level: dict(zip(PRINCIPALS, row, strict=True)) for level, row in _LEVELS.items()}


def expected_api(level: str, actor: str) -> int | None:
    """None = allowed (2xx); else the exact refusal status."""
    return EXPECTED[f"api:{level}"][actor]


def expected_v2(level: str, actor: str) -> int | None:
    return EXPECTED[f"v2:{level}"][actor]


async def add_team_principals(world) -> None:
    """mia (plain member) and tess (team reader) join the cast, with API tokens."""
    from shared.model import accounts

    if "mia" in world.ids:
        return
    async with world.conn.transaction():
        for user in ("mia", "tess"):
            world.ids[user] = await accounts.create_user(world.conn, user, PASSWORD, f"{user}@example.com")
            world.api_tokens[user] = (await accounts.create_api_token(world.conn, world.ids[user]))[1]
        for team, member in (("staff", "mia"), ("readers", "tess")):
            team_id = await world.conn.fetchval(
                "INSERT INTO teams (namespace_id, name, role) VALUES ($1, $2, 'member') RETURNING id", world.ids["acme"], team)
            await world.conn.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)", team_id, world.ids[member])
            world.ids[f"team:{team}"] = team_id
            if team == "readers":
                await world.conn.execute("INSERT INTO repository_permissions (repository_id, team_id, role) VALUES ($1, $2, 'read')",
                                         world.ids["acme/private"], team_id)


async def _member_org(world) -> str:
    """A fresh organisation (alice owns it) where mia and tess are plain members, like in acme."""
    org = await world.fresh_org()
    if "mia" in world.ids:
        team_id = await world.conn.fetchval(
            "INSERT INTO teams (namespace_id, name, role) SELECT id, 'staff', 'member' FROM namespaces WHERE name = $1 "
            "RETURNING id", org)
        for member in ("mia", "tess"):
            await world.conn.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)", team_id, world.ids[member])
    return org


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
        ("organization", "DELETE"): ("org-admin", lambda w, a: _wrap(_member_org(w), "organization/{}", fresh_org_admin=True)),
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
        ("organization_quotas", "POST"): ("org-admin", lambda w, a: _wrap(_member_org(w), "organization/{}/quota",
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
    org = await _member_org(world)
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
    await add_team_principals(world)
    cases = {(name, method): case for (surface, name, method), case in matrix().items() if surface == "api"}
    routes = {(route.name, method) for route in API_ROUTES for method in route.ops}
    assert routes == set(cases), f"matrix and route table differ: {routes ^ set(cases)}"
    failures = []
    for (_name, method), (level, prepare) in sorted(cases.items()):
        for actor in PRINCIPALS:
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


async def _root(world):
    """A root session on acme/private, made once per world (the v2 rows' fresh targets are root's)."""
    if not hasattr(world, "matrix_root"):
        world.matrix_root = await world.as_actor("root", "repository:acme/private:pull,push,delete")
    return world.matrix_root


async def _open_session(world):
    root = await _root(world)
    async with root.http.post(root.v2("acme/private/blobs/uploads/")) as r:
        assert r.status == 202
        return r.headers["Location"]


async def _fresh_blob(world):
    return await push_blob(await _root(world), "acme/private", os.urandom(64))


async def _manifest_body(world):
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(4).hex()}).encode()
    await push_blob(await _root(world), "acme/private", config)
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config), "layers": []}).encode()


async def _fresh_tag(world):
    tag = unique("t")
    await push_image(await _root(world), "acme/private", tag)
    return tag


CHUNK = b"chunk of bytes"


# (route name, method) -> (level, async prepare(world) -> (path, body or None, headers))
def v2_cases():
    def fixed(path):
        return lambda w: _value((path, None, {}))

    return {
        ("base", "GET"): ("any", fixed("/v2/")),
        ("base", "HEAD"): ("any", fixed("/v2/")),
        ("catalog", "GET"): ("any", fixed("/v2/_catalog")),
        ("auth", "GET"): ("any", fixed("/v2/auth?scope=repository:acme/private:pull")),
        ("tags", "GET"): ("read", fixed("/v2/acme/private/tags/list")),
        ("referrers", "GET"): ("read", lambda w: _value((f"/v2/acme/private/referrers/{w.private_digest}", None, {}))),
        ("blob", "GET"): ("read", lambda w: _digest_path(_fresh_blob(w), "/v2/acme/private/blobs/{}")),
        ("blob", "HEAD"): ("read", lambda w: _digest_path(_fresh_blob(w), "/v2/acme/private/blobs/{}")),
        ("blob", "DELETE"): ("write", lambda w: _digest_path(_fresh_blob(w), "/v2/acme/private/blobs/{}")),
        ("manifest", "GET"): ("read", fixed("/v2/acme/private/manifests/v1")),
        ("manifest", "HEAD"): ("read", fixed("/v2/acme/private/manifests/v1")),
        ("manifest", "PUT"): ("write", lambda w: _manifest_put(_manifest_body(w))),
        ("manifest", "DELETE"): ("write", lambda w: _digest_path(_fresh_tag(w), "/v2/acme/private/manifests/{}")),
        ("upload_start", "POST"): ("write", fixed("/v2/acme/private/blobs/uploads/")),
        ("upload", "GET"): ("write", lambda w: _digest_path(_open_session(w), "{}")),
        ("upload", "PATCH"): ("write", lambda w: _session_call(_open_session(w), "", CHUNK)),
        ("upload", "PUT"): ("write", lambda w: _session_call(_open_session(w), f"digest={sha256(CHUNK)}", CHUNK)),
        ("upload", "DELETE"): ("write", lambda w: _digest_path(_open_session(w), "{}")),
    }


def matrix() -> dict[tuple[str, str, str], tuple[str, Callable[..., Any]]]:
    """THE table: (surface, route name, method) -> (level, prepare); EXPECTED[f"{surface}:{level}"]
    gives each principal's status."""
    return {**{("api", name, method): case for (name, method), case in api_cases().items()},
            **{("v2", name, method): case for (name, method), case in v2_cases().items()}}


def test_matrix_is_one_table_over_every_route():
    table = matrix()
    routes = ({("api", route.name, method) for route in API_ROUTES for method in route.ops}
              | {("v2", route.name, method) for route in V2_ROUTES for method in route.methods})
    assert not routes - set(table), f"routes without a row in the permission matrix: {sorted(routes - set(table))}"
    assert not set(table) - routes, f"matrix rows for routes that do not exist: {sorted(set(table) - routes)}"
    for (surface, name, method), (level, _) in table.items():
        assert f"{surface}:{level}" in EXPECTED, f"{surface} {name} {method}: level {level!r} has no row in EXPECTED"
    for level, statuses in EXPECTED.items():
        assert set(statuses) == set(PRINCIPALS), level
        assert all(status is None or 400 <= status < 500 for status in statuses.values()), level
    # The kinds of caller the issue asks for are all principals of the table.
    assert {"anonymous", "mia", "tess", "alice", "robot_with", "olga", "root"} <= set(PRINCIPALS)


async def test_v2_permission_matrix(world):
    await add_team_principals(world)
    cases = {(name, method): case for (surface, name, method), case in matrix().items() if surface == "v2"}
    routes = {(route.name, method) for route in V2_ROUTES for method in route.methods}
    assert routes == set(cases), f"matrix and route table differ: {routes ^ set(cases)}"
    scope = "repository:acme/private:pull,push,delete"
    tokens = {actor: await world.v2_token(actor, scope, "registry:catalog:*") for actor in PRINCIPALS}
    failures = []
    for (name, method), (level, prepare) in sorted(cases.items()):
        for actor in PRINCIPALS:
            path, body, headers = await prepare(world)
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
