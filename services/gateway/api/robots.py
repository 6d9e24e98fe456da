"""Robot accounts `org+name`: create (with description, teams and repository permissions), list,
view, regenerate the token, delete, and set one robot's permissions on many repositories at once."""
from __future__ import annotations

from aiohttp import web

from shared.errors import ApiError
from shared.model import Db, accounts
from shared.model import access as access_model
from shared.model import robots as robots_model
from shared.model import teams as teams_model

from ..v2.base import gateway
from .base import (
    ApiRoute,
    Op,
    iso,
    json_body,
    log_action,
    ok,
    organization_for,
    readable_only,
    text_field,
    writable_repository,
)
from .teams import team_row


async def robot_row(conn: Db, namespace, shortname: str):
    row = await robots_model.robot_in_namespace(conn, namespace["id"], f"{namespace['name']}+{shortname}")
    if row is None:
        raise ApiError(404, f"robot {namespace['name']}+{shortname} not found", error_type="not_found")
    return row


async def _permissions(request: web.Request, conn: Db, robot_id: int) -> list[dict]:
    rows = await readable_only(request, await access_model.permissions_held(conn, "user", robot_id), lambda r: r["full_name"])
    return [{"repository": {"name": r["full_name"], "is_public": r["visibility"] == "public"}, "role": r["role"]} for r in rows]


async def _view(request: web.Request, conn: Db, row, *, permissions: bool) -> dict:
    teams = await teams_model.team_names_of_member(conn, row["id"])
    view = {"name": row["username"], "description": row["description"], "created": iso(row["created_at"]),
            "last_accessed": iso(row["last_accessed"]), "teams": [{"name": t} for t in teams]}
    if permissions:
        perms = await _permissions(request, conn, row["id"])
        view["repositories"] = [p["repository"]["name"] for p in perms]
        view["permissions"] = perms
    return view


async def _repository_ids(conn: Db, namespace, roles: dict) -> list[tuple[int, str, str | None]]:
    """Validate {"ns/repo": role-or-null} against this namespace; every problem is reported at once."""
    if not isinstance(roles, dict):
        raise ApiError(400, "field 'permissions' must be an object like {\"org/repo\": \"write\", \"org/old\": null}")
    out, problems = [], []
    for name, role in roles.items():
        if role is not None and role not in access_model.REPO_ROLES:
            problems.append(f"{name}: role must be read, write, admin or null, got {role!r}")
            continue
        repo = await access_model.grantable_repository(conn, namespace["id"], name)
        if repo is None:
            problems.append(f"{name}: no such repository in {namespace['name']}")
            continue
        writable_repository(repo, name)
        out.append((repo["id"], name, role))
    if problems:
        raise ApiError(400, "nothing was changed: " + "; ".join(problems), detail={"problems": problems})
    return out


async def list_robots(request: web.Request, orgname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    with_permissions = request.query.get("permissions", "false").lower() == "true"
    async with gw.pool.acquire() as conn:
        rows = await robots_model.robots_in_namespace(conn, namespace["id"])
        robots = [await _view(request, conn, row, permissions=with_permissions) for row in rows]
    return ok({"robots": robots})


async def get_robot(request: web.Request, orgname: str, robot_shortname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    async with gw.pool.acquire() as conn:
        return ok(await _view(request, conn, await robot_row(conn, namespace, robot_shortname), permissions=True))


async def create_robot(request: web.Request, orgname: str, robot_shortname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    problem = accounts.short_name_problem("robot", robot_shortname)
    if problem:
        raise ApiError(400, problem)
    body = await json_body(request)
    description = text_field(body, "description", max_length=255, default="") or ""
    teams = body.get("teams", [])
    if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
        raise ApiError(400, "field 'teams' must be a list of team names")
    full_name = f"{orgname}+{robot_shortname}"
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            grants = await _repository_ids(conn, namespace, body.get("repositories", {}))
            team_ids = [(await team_row(conn, namespace["id"], t))["id"] for t in teams]
            try:
                token = await accounts.create_robot(conn, namespace["id"], full_name, description)
            except accounts.NameTaken:
                raise ApiError(409, f"robot {full_name} already exists", error_type="conflict") from None
            robot = await robot_row(conn, namespace, robot_shortname)
            for team_id in team_ids:
                await teams_model.add_team_member(conn, team_id, robot["id"])
            for repo_id, _, role in grants:
                await access_model.set_permission(conn, repo_id, "user", robot["id"], role)
            await log_action(conn, request, "create_robot", namespace_id=namespace["id"], namespace=orgname, robot=full_name,
                             teams=teams, repositories={name: role for _, name, role in grants})
            view = await _view(request, conn, robot, permissions=True)
    return ok({**view, "token": token}, 201)


async def delete_robot(request: web.Request, orgname: str, robot_shortname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            row = await robot_row(conn, namespace, robot_shortname)
            await accounts.delete_account(conn, row["id"])
            await log_action(conn, request, "delete_robot", namespace_id=namespace["id"], namespace=orgname, robot=row["username"])
    return ok(status=204)


async def regenerate(request: web.Request, orgname: str, robot_shortname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            row = await robot_row(conn, namespace, robot_shortname)
            token = await accounts.regenerate_robot_token(conn, row["id"])
            await log_action(conn, request, "regenerate_robot_token", namespace_id=namespace["id"], namespace=orgname,
                             robot=row["username"])
            view = await _view(request, conn, row, permissions=False)
    return ok({**view, "token": token})


async def robot_permissions(request: web.Request, orgname: str, robot_shortname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    async with gw.pool.acquire() as conn:
        row = await robot_row(conn, namespace, robot_shortname)
        return ok({"permissions": await _permissions(request, conn, row["id"])})


async def set_robot_permissions(request: web.Request, orgname: str, robot_shortname: str) -> web.Response:
    """Bulk: {"permissions": {"org/a": "write", "org/b": "read", "org/c": null}} applied all or nothing."""
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    body = await json_body(request)
    if "permissions" not in body:
        raise ApiError(400, "field 'permissions' is required, like {\"permissions\": {\"org/repo\": \"write\"}}")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            row = await robot_row(conn, namespace, robot_shortname)
            grants = await _repository_ids(conn, namespace, body["permissions"])
            for repo_id, name, role in grants:
                await access_model.set_permission(conn, repo_id, "user", row["id"], role)
                await log_action(conn, request, "change_repo_permission" if role else "delete_repo_permission",
                                 namespace_id=namespace["id"], namespace=orgname, repository_id=repo_id, repository=name,
                                 username=row["username"], role=role, bulk=True)
            return ok({"permissions": await _permissions(request, conn, row["id"])})


ROLE_OR_NULL = {"type": "string", "nullable": True, "enum": [*access_model.REPO_ROLES, None]}
ROUTES = [
    ApiRoute("robots", "/organization/{orgname}/robots", {
        "GET": Op(list_robots, "The organization's robots", query={"permissions": {"type": "string", "enum": ["true", "false"]}}),
    }),
    ApiRoute("robot", "/organization/{orgname}/robots/{robot_shortname}", {
        "GET": Op(get_robot, "A robot with its teams and permissions"),
        "PUT": Op(create_robot, "Create a robot; the response holds its token (409 if it exists)", status=201,
                  body={"type": "object", "properties": {
                      "description": {"type": "string", "maxLength": 255},
                      "teams": {"type": "array", "items": {"type": "string"}},
                      "repositories": {"type": "object", "additionalProperties": ROLE_OR_NULL}}}),
        "DELETE": Op(delete_robot, "Delete a robot", status=204),
    }),
    ApiRoute("robot_regenerate", "/organization/{orgname}/robots/{robot_shortname}/regenerate", {
        "POST": Op(regenerate, "Replace the robot's token; the old one stops working at once"),
    }),
    ApiRoute("robot_permissions", "/organization/{orgname}/robots/{robot_shortname}/permissions", {
        "GET": Op(robot_permissions, "The robot's repository permissions"),
        "PUT": Op(set_robot_permissions, "Set the robot's role on many repositories at once (null removes)",
                  body={"type": "object", "required": ["permissions"],
                        "properties": {"permissions": {"type": "object", "additionalProperties": ROLE_OR_NULL}}}),
    }),
]
