"""What the web UI's organisation and superuser pages list, one page per call, filtered, sorted and
paged on the server with the total: organisations with their counts, size and last change; an
organisation's robots, teams, members, collaborators, a team's members, and its repositories with
one team's, user's or robot's role; every user (superusers); and names for pickers (entities).
The SQL is in shared/model/directory.py. Who may list what follows the resources' own endpoints:
members see teams and members; administrators see robots, collaborators and roles."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from shared.errors import ApiError
from shared.model import accounts, directory
from shared.model import browse as browse_model
from shared.model import teams as teams_model

from ..state import gateway
from .base import (
    ApiRoute,
    Op,
    caller,
    iso,
    namespace_for,
    ok,
    organization_for,
    request_principal,
    sees_everything,
    signed_in,
    signed_in_superuser,
)
from .browse import PAGE_QUERY, name_filter, paging, sorting


def _list_query(request: web.Request, sorts: tuple[str, ...], default: str = "name") -> dict[str, Any]:
    limit, page, offset = paging(request.query)
    sort, descending = sorting(request.query, sorts, default)
    text, regex = name_filter(request.query)
    return {"limit": limit, "offset": offset, "page": page, "sort": sort, "descending": descending, "text": text, "regex": regex}


def _viewer(principal) -> dict[str, Any]:
    """Who counts are made for: what the viewer may not read is not counted."""
    return {"viewer_id": principal.id if principal else None, "superuser": bool(principal and principal.superuser)}


async def _run(fn, *args, **query) -> tuple[list, int, int, int]:
    page, limit = query.pop("page"), query["limit"]
    try:
        rows, total = await fn(*args, **query)
    except browse_model.BadFilter as exc:
        raise ApiError(400, str(exc)) from None
    return rows, total, page, limit


def _paged(key: str, items: list, total: int, page: int, limit: int, **extra) -> web.Response:
    return ok({key: items, "total": total, "page": page, "limit": limit,
               "has_additional": (page - 1) * limit + len(items) < total, **extra})


async def organizations(request: web.Request) -> web.Response:
    gw = gateway(request)
    everything = await sees_everything(request)  # open access: anonymous callers see every organisation
    principal = await caller(request) if everything else await signed_in(request)
    rows, total, page, limit = await _run(directory.organizations_page, gw.pool, user_id=principal.id if principal else None,
                                          superuser=everything, **_list_query(request, directory.ORGANIZATION_SORTS))
    items = [{"name": r["name"], "email": r["email"], "created": iso(r["created_at"]), "repositories": r["repositories"],
              "teams": r["teams"], "members": r["members"], "robots": r["robots"],  # None unless an administrator: robots are theirs
              "last_modified": iso(r["last_modified"]),
              "size": r["size"], "is_admin": r["is_admin"]} for r in rows]
    return _paged("organizations", items, total, page, limit)


async def robots(request: web.Request, orgname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    rows, total, page, limit = await _run(directory.robots_page, gw.pool, namespace["id"],
                                          **_list_query(request, directory.ROBOT_SORTS))
    items = [{"name": r["name"], "description": r["description"], "created": iso(r["created"]),
              "last_accessed": iso(r["last_accessed"]), "teams": [{"name": t} for t in r["team_names"]],
              "repositories": r["repositories"]} for r in rows]
    return _paged("robots", items, total, page, limit)


async def teams(request: web.Request, orgname: str) -> web.Response:
    gw = gateway(request)
    namespace, role = await organization_for(request, orgname, need="member")
    viewer = request_principal(request)
    rows, total, page, limit = await _run(directory.teams_page, gw.pool, namespace["id"], **_viewer(viewer),
                                          **_list_query(request, directory.TEAM_SORTS))
    items = [{"name": r["name"], "role": r["role"], "description": r["description"], "members": r["members"],
              "repositories": r["repositories"]} for r in rows]
    return _paged("teams", items, total, page, limit, is_admin=role == "admin")


async def members(request: web.Request, orgname: str) -> web.Response:
    gw = gateway(request)
    namespace, role = await organization_for(request, orgname, need="member")
    kind = request.query.get("kind") or None
    if kind not in (None, "user", "robot"):
        raise ApiError(400, "kind must be user or robot")
    rows, total, page, limit = await _run(directory.members_page, gw.pool, namespace["id"], kind=kind,
                                          **_viewer(request_principal(request)), **_list_query(request, directory.MEMBER_SORTS))
    items = [{"name": r["name"], "kind": "robot" if r["robot"] else "user", "teams": [{"name": t} for t in r["team_names"]],
              "repositories": r["repositories"]} for r in rows]
    return _paged("members", items, total, page, limit, is_admin=role == "admin")


async def collaborators(request: web.Request, orgname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    rows, total, page, limit = await _run(directory.collaborators_page, gw.pool, namespace["id"],
                                          **_list_query(request, directory.COLLABORATOR_SORTS))
    items = [{"name": r["name"], "kind": "user", "repositories": r["repositories"]} for r in rows]
    return _paged("collaborators", items, total, page, limit)


async def team_members(request: web.Request, orgname: str, teamname: str) -> web.Response:
    gw = gateway(request)
    namespace, role = await organization_for(request, orgname, need="member")
    team = await teams_model.team_by_name(gw.pool, namespace["id"], teamname)
    if team is None:
        raise ApiError(404, f"team {teamname!r} not found", error_type="not_found")
    rows, total, page, limit = await _run(directory.team_members_page, gw.pool, team["id"],
                                          **_list_query(request, directory.TEAM_MEMBER_SORTS))
    items = [{"name": r["name"], "kind": "robot" if r["robot"] else "user"} for r in rows]
    return _paged("members", items, total, page, limit, team={"name": team["name"], "role": team["role"],
                                                              "description": team["description"]},
                  is_admin=role == "admin")


async def repository_roles(request: web.Request, orgname: str) -> web.Response:
    """The organisation's repositories with one holder's direct role: `team=NAME` or `member=NAME`
    (a user or one of its robots); neither lists every repository with no role (a wizard's start)."""
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    team_name, member_name = request.query.get("team") or None, request.query.get("member") or None
    if team_name and member_name:
        raise ApiError(400, "give team or member, not both")
    holder = None
    if team_name:
        team = await teams_model.team_by_name(gw.pool, namespace["id"], team_name)
        if team is None:
            raise ApiError(404, f"team {team_name!r} not found", error_type="not_found")
        holder = ("team", team["id"])
    elif member_name:
        account = await accounts.account_by_name(gw.pool, member_name)
        if account is None or (account["robot_namespace_id"] is not None and account["robot_namespace_id"] != namespace["id"]):
            raise ApiError(404, f"user or robot {member_name!r} not found", error_type="not_found")
        holder = ("user", account["id"])
    granted = request.query.get("granted", "false").lower()
    if granted not in ("true", "false"):
        raise ApiError(400, "granted must be true or false")
    rows, total, page, limit = await _run(directory.repository_roles_page, gw.pool, namespace["id"], holder=holder,
                                          granted_only=granted == "true", **_list_query(request, directory.REPOSITORY_ROLE_SORTS))
    items = [{"name": r["name"], "short_name": r["short_name"], "is_public": r["visibility"] == "public", "role": r["role"]}
             for r in rows]
    return _paged("repositories", items, total, page, limit)


async def users(request: web.Request) -> web.Response:
    gw = gateway(request)
    await signed_in_superuser(request, "list users")
    enabled_text = request.query.get("enabled") or None
    if enabled_text not in (None, "true", "false"):
        raise ApiError(400, "enabled must be true or false")
    enabled = None if enabled_text is None else enabled_text == "true"
    rows, total, page, limit = await _run(directory.users_page, gw.pool, enabled=enabled,
                                          **_list_query(request, directory.USER_SORTS))
    items = [{"username": r["name"], "email": r["email"], "enabled": r["enabled"], "created": iso(r["created"]),
              "super_user": accounts.is_superuser(r["name"], gw.config.super_users)} for r in rows]
    return _paged("users", items, total, page, limit)


async def entities(request: web.Request) -> web.Response:
    """Names starting with `prefix` for pickers: users; with `namespace`, its teams (members) and
    robots (administrators)."""
    gw = gateway(request)
    await signed_in(request)
    prefix = request.query.get("prefix", "")
    if not 1 <= len(prefix) <= 255 or "\x00" in prefix:
        raise ApiError(400, "prefix must be 1 to 255 characters")
    namespace_id, role = None, None
    if request.query.get("namespace"):
        row, role = await namespace_for(request, request.query["namespace"], need="member")
        namespace_id = row["id"]
    results = await directory.entities(gw.pool, prefix, namespace_id=namespace_id, robots=role == "admin",
                                       teams=role is not None, limit=10)
    return ok({"results": results})


def _sort(sorts: tuple[str, ...]) -> dict:
    return {**PAGE_QUERY, "sort": {"type": "string", "enum": list(sorts)}}


ORG = "/browse/organization/{orgname}"
ROUTES = [
    ApiRoute("browse_organizations", "/browse/organizations", {
        "GET": Op(organizations, "Organisations you are in (superusers: all) with repository, team and member counts, robot counts "
                                 "(administrators; null for others), "
                                 "size and last change; filtered, sorted and paged on the server, with the total",
                  query=_sort(directory.ORGANIZATION_SORTS)),
    }),
    ApiRoute("browse_robots", f"{ORG}/robots", {
        "GET": Op(robots, "The organisation's robots with their teams and repository counts, paged (administrators)",
                  query=_sort(directory.ROBOT_SORTS)),
    }),
    ApiRoute("browse_teams", f"{ORG}/teams", {
        "GET": Op(teams, "The organisation's teams with member and repository counts, paged (members)",
                  query=_sort(directory.TEAM_SORTS)),
    }),
    ApiRoute("browse_members", f"{ORG}/members", {
        "GET": Op(members, "Users and robots in the organisation's teams with their teams and direct repository "
                           "permission counts, paged (members)",
                  query={**_sort(directory.MEMBER_SORTS), "kind": {"type": "string", "enum": ["user", "robot"]}}),
    }),
    ApiRoute("browse_collaborators", f"{ORG}/collaborators", {
        "GET": Op(collaborators, "Users outside every team holding direct permissions on the organisation's repositories, "
                                 "paged (administrators)", query=_sort(directory.COLLABORATOR_SORTS)),
    }),
    ApiRoute("browse_team_members", f"{ORG}/team/{{teamname}}/members", {
        "GET": Op(team_members, "A team's members, paged at any size (members)", query=_sort(directory.TEAM_MEMBER_SORTS)),
    }),
    ApiRoute("browse_repository_roles", f"{ORG}/repositories", {
        "GET": Op(repository_roles, "The organisation's repositories with one team's (team=) or user's or robot's (member=) "
                                    "direct role, paged (administrators)",
                  query={**_sort(directory.REPOSITORY_ROLE_SORTS), "team": {"type": "string"}, "member": {"type": "string"},
                         "granted": {"type": "string", "enum": ["true", "false"]}}),
    }),
    ApiRoute("browse_users", "/browse/users", {
        "GET": Op(users, "Every user, disabled ones included, paged (superusers)",
                  query={**_sort(directory.USER_SORTS), "enabled": {"type": "string", "enum": ["true", "false"]}}),
    }),
    ApiRoute("entities", "/entities", {
        "GET": Op(entities, "Users whose name starts with prefix; with namespace, its teams (members) and robots "
                            "(administrators)", query={"prefix": {"type": "string", "minLength": 1, "maxLength": 255},
                                                       "namespace": {"type": "string"}}),
    }),
]
