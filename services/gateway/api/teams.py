"""Teams with roles member / creator / admin, their members (users and this organisation's robots)
and the repository permissions they hold."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from shared.errors import ApiError
from shared.model import Db, accounts
from shared.model import access as access_model
from shared.model import teams as teams_model

from ..v2.base import gateway
from .base import ApiRoute, Op, choice_field, json_body, log_action, ok, organization_for, readable_only, text_field


async def team_row(conn: Db, namespace_id: int, name: str):
    row = await teams_model.team_by_name(conn, namespace_id, name)
    if row is None:
        raise ApiError(404, f"team {name!r} not found", error_type="not_found")
    return row


async def member_id(conn: Db, namespace, name: str) -> int:
    """A user, or a robot of this organisation; others' robots cannot join."""
    robot_namespace, plus, _ = name.partition("+")
    row = None if plus and robot_namespace != namespace["name"] else await accounts.account_by_name(conn, name)
    if row is None:
        # Another organisation's robot is not looked up: it is "not found" here whether it exists or not
        # (a 400 for an existing one and a 404 for a missing one told which robots others have).
        raise ApiError(404, f"user or robot {name!r} not found", error_type="not_found")
    if row["robot_namespace_id"] is not None and row["robot_namespace_id"] != namespace["id"]:
        raise ApiError(400, f"robot {name} belongs to another namespace; only {namespace['name']}+... robots can be used here")
    return row["id"]


def _view(row, members: int | None = None) -> dict:
    view = {"name": row["name"], "role": row["role"], "description": row["description"]}
    if members is not None:
        view["member_count"] = members
    return view


async def _create_or_update(request, orgname: str, teamname: str, body: dict, *, create_only: bool) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    problem = accounts.short_name_problem("team", teamname)
    if problem:
        raise ApiError(400, problem)
    role = choice_field(body, "role", accounts.TEAM_ROLES)
    description = text_field(body, "description", max_length=4096, default="") or ""
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            existing = await teams_model.team_by_name(conn, namespace["id"], teamname)
            if existing is not None and create_only:
                raise ApiError(409, f"team {teamname!r} already exists in {orgname}", error_type="conflict")
            if existing is not None and teamname == accounts.OWNERS_TEAM and role != "admin":
                raise ApiError(400, "the owners team must keep the admin role")
            row = await teams_model.put_team(conn, namespace["id"], teamname, role, description)
            kind = "org_create_team" if existing is None else "org_set_team_role"
            await log_action(conn, request, kind, namespace_id=namespace["id"], namespace=orgname, team=teamname, role=role)
    return ok(_view(row), 201 if existing is None else 200)


async def create_team(request: web.Request, orgname: str) -> web.Response:
    body = await json_body(request)
    name = text_field(body, "name", required=True, max_length=255)
    return await _create_or_update(request, orgname, name, body, create_only=True)


async def put_team(request: web.Request, orgname: str, teamname: str) -> web.Response:
    return await _create_or_update(request, orgname, teamname, await json_body(request), create_only=False)


async def delete_team(request: web.Request, orgname: str, teamname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    if teamname == accounts.OWNERS_TEAM:
        raise ApiError(400, "the owners team cannot be deleted: it holds the organization's administrators")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            team = await team_row(conn, namespace["id"], teamname)
            await teams_model.delete_team(conn, team["id"])
            await log_action(conn, request, "org_delete_team", namespace_id=namespace["id"], namespace=orgname, team=teamname)
    return ok(status=204)


async def list_team_members(request: web.Request, orgname: str, teamname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="member")
    team = await team_row(gw.pool, namespace["id"], teamname)
    rows = await teams_model.team_members(gw.pool, team["id"])
    return ok({"name": teamname, "members": [{"name": r["username"], "kind": "robot" if r["robot"] else "user"} for r in rows]})


async def add_team_member(request: web.Request, orgname: str, teamname: str, membername: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            team = await team_row(conn, namespace["id"], teamname)
            user_id = await member_id(conn, namespace, membername)
            await teams_model.add_team_member(conn, team["id"], user_id)
            await log_action(conn, request, "org_add_team_member", namespace_id=namespace["id"], namespace=orgname,
                             team=teamname, member=membername)
    return ok({"name": membername, "team": teamname})


async def remove_team_member(request: web.Request, orgname: str, teamname: str, membername: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            team = await team_row(conn, namespace["id"], teamname)
            user_id = await member_id(conn, namespace, membername)
            if not await teams_model.remove_team_member(conn, team["id"], user_id):
                raise ApiError(404, f"{membername} is not a member of {teamname}", error_type="not_found")
            if teamname == accounts.OWNERS_TEAM and not await teams_model.team_has_members(conn, team["id"]):
                raise ApiError(400, "the owners team must keep at least one member")
            await log_action(conn, request, "org_remove_team_member", namespace_id=namespace["id"], namespace=orgname,
                             team=teamname, member=membername)
    return ok(status=204)


async def team_permissions(request: web.Request, orgname: str, teamname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="member")
    team = await team_row(gw.pool, namespace["id"], teamname)
    rows = await readable_only(request, await access_model.permissions_held(gw.pool, "team", team["id"]),
                               lambda r: r["full_name"])
    return ok({"permissions": [{"repository": {"name": r["full_name"], "is_public": r["visibility"] == "public"},
                                "role": r["role"]} for r in rows]})


TEAM_BODY: dict[str, Any] = {"type": "object", "required": ["role"],
             "properties": {"role": {"enum": list(accounts.TEAM_ROLES)}, "description": {"type": "string"}}}
ROUTES = [
    ApiRoute("teams", "/organization/{orgname}/team/", {
        "POST": Op(create_team, "Create a team (409 if it exists)", status=201,
                   body={**TEAM_BODY, "required": ["name", "role"],
                         "properties": {**TEAM_BODY["properties"], "name": {"type": "string"}}}),
    }),
    ApiRoute("team", "/organization/{orgname}/team/{teamname}", {
        "PUT": Op(put_team, "Create or update a team (role member, creator or admin)", body=TEAM_BODY),
        "DELETE": Op(delete_team, "Delete a team", status=204),
    }),
    ApiRoute("team_members", "/organization/{orgname}/team/{teamname}/members", {
        "GET": Op(list_team_members, "Members of a team"),
    }),
    ApiRoute("team_member", "/organization/{orgname}/team/{teamname}/members/{membername}", {
        "PUT": Op(add_team_member, "Add a user or robot to a team"),
        "DELETE": Op(remove_team_member, "Remove a user or robot from a team", status=204),
    }),
    ApiRoute("team_permissions", "/organization/{orgname}/team/{teamname}/permissions", {
        "GET": Op(team_permissions, "Repository permissions the team holds"),
    }),
]
