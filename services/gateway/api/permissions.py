"""Repository permissions for users, robots and teams: read, write, admin."""
from __future__ import annotations

from aiohttp import web

from shared.errors import ApiError
from shared.model import Db, accounts
from shared.model import access as access_model

from ..v2.base import gateway
from .base import ApiRoute, Op, choice_field, json_body, log_action, ok, repository_for
from .teams import team_row


async def _user(conn: Db, repo, username: str):
    robot_namespace, plus, _ = username.partition("+")
    foreign_robot = plus and robot_namespace != repo["full_name"].partition("/")[0]
    row = None if foreign_robot else await accounts.account_by_name(conn, username)
    if row is None:
        # Another organisation's robot is not looked up: "not found" whether it exists or not.
        raise ApiError(404, f"user or robot {username!r} not found", error_type="not_found")
    if row["robot_namespace_id"] is not None and row["robot_namespace_id"] != repo["namespace_id"]:
        raise ApiError(400, f"robot {username} belongs to another namespace and cannot be granted access here")
    return row


async def list_user_permissions(request: web.Request, repository: str) -> web.Response:
    gw = gateway(request)
    repo, _ = await repository_for(request, repository, "admin")
    rows = await access_model.user_permissions_on(gw.pool, repo["id"])
    return ok({"permissions": {r["username"]: {"name": r["username"], "role": r["role"], "is_robot": r["robot"]} for r in rows}})


async def list_team_permissions(request: web.Request, repository: str) -> web.Response:
    gw = gateway(request)
    repo, _ = await repository_for(request, repository, "admin")
    rows = await access_model.team_permissions_on(gw.pool, repo["id"])
    return ok({"permissions": {r["name"]: {"name": r["name"], "role": r["role"]} for r in rows}})


# How a holder without a permission is called in the 404.
_HOLDER_LABELS = {"user": "{}", "team": "team {}"}


async def _get(request: web.Request, repository: str, kind: str, name: str) -> web.Response:
    gw = gateway(request)
    repo, _ = await repository_for(request, repository, "admin")
    role = await access_model.role_of_holder_named(gw.pool, repo["id"], kind, name)
    if role is None:
        raise ApiError(404, f"{_HOLDER_LABELS[kind].format(name)} has no permission on {repository}", error_type="not_found")
    return ok({"name": name, "role": role})


async def get_user_permission(request: web.Request, repository: str, username: str) -> web.Response:
    return await _get(request, repository, "user", username)


async def get_team_permission(request: web.Request, repository: str, teamname: str) -> web.Response:
    return await _get(request, repository, "team", teamname)


async def _change(request, repository: str, kind: str, name: str, role: str | None) -> None:
    gw = gateway(request)
    repo, _ = await repository_for(request, repository, "admin")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            ident = ((await _user(conn, repo, name))["id"] if kind == "user"
                     else (await team_row(conn, repo["namespace_id"], name))["id"])
            if role is None and not await access_model.has_permission(conn, repo["id"], kind, ident):
                raise ApiError(404, f"{name} has no permission on {repository}", error_type="not_found")
            await access_model.set_permission(conn, repo["id"], kind, ident, role)
            await log_action(conn, request, "change_repo_permission" if role else "delete_repo_permission",
                             namespace_id=repo["namespace_id"], repository_id=repo["id"], repository=repository,
                             **({"username": name} if kind == "user" else {"team": name}), role=role)


async def put_user_permission(request: web.Request, repository: str, username: str) -> web.Response:
    role = choice_field(await json_body(request), "role", access_model.REPO_ROLES)
    await _change(request, repository, "user", username, role)
    return ok({"name": username, "role": role})


async def delete_user_permission(request: web.Request, repository: str, username: str) -> web.Response:
    await _change(request, repository, "user", username, None)
    return ok(status=204)


async def put_team_permission(request: web.Request, repository: str, teamname: str) -> web.Response:
    role = choice_field(await json_body(request), "role", access_model.REPO_ROLES)
    await _change(request, repository, "team", teamname, role)
    return ok({"name": teamname, "role": role})


async def delete_team_permission(request: web.Request, repository: str, teamname: str) -> web.Response:
    await _change(request, repository, "team", teamname, None)
    return ok(status=204)


ROLE_BODY = {"type": "object", "required": ["role"], "properties": {"role": {"enum": list(access_model.REPO_ROLES)}}}
ROUTES = [
    ApiRoute("repo_user_permissions", "/repository/{repository}/permissions/user/", {
        "GET": Op(list_user_permissions, "Users' and robots' permissions on a repository"),
    }),
    ApiRoute("repo_team_permissions", "/repository/{repository}/permissions/team/", {
        "GET": Op(list_team_permissions, "Teams' permissions on a repository"),
    }),
    ApiRoute("repo_user_permission", "/repository/{repository}/permissions/user/{username}", {
        "GET": Op(get_user_permission, "One user's or robot's permission"),
        "PUT": Op(put_user_permission, "Grant a user or robot read, write or admin", body=ROLE_BODY),
        "DELETE": Op(delete_user_permission, "Remove a user's or robot's permission", status=204),
    }),
    ApiRoute("repo_team_permission", "/repository/{repository}/permissions/team/{teamname}", {
        "GET": Op(get_team_permission, "One team's permission"),
        "PUT": Op(put_team_permission, "Grant a team read, write or admin", body=ROLE_BODY),
        "DELETE": Op(delete_team_permission, "Remove a team's permission", status=204),
    }),
]
